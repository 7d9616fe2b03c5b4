-- Realtime's own database objects (applied at bootstrap after supabase.sql, once).
--
-- realtime.visible_rows decides which changed rows each subscriber may see, the way Supabase's realtime.apply_rls
-- does: for each subscriber's JWT claims it becomes that subscriber (role and request.jwt.claims*, local to the
-- transaction, as PostgREST sets them) and looks the rows up by their key, so the table's grants and row-level
-- security policies decide. One call answers a whole batch of decoded changes: one round trip, one statement.
-- The region calls it as supabase_admin; the function makes its transaction read-only first (it runs on a hot
-- standby too). Only a role PostgREST could take (one granted to authenticator) is tried.
--
--   checks: [{"entity": <table oid>, "key": ["id"], "claims": {<JWT claims>}, "rows": [["<id>"], …]}, …]
--   result: [[<0-based indexes into that check's rows that the claims can SELECT>], …], one list per check

create schema if not exists realtime;

create function realtime.visible_rows(checks jsonb)
returns jsonb
language plpgsql volatile
as $$
declare
  item jsonb;
  entity oid;
  condition text;
  conditions text;
  matched int;
  claim_role text;
  query text;
  queries jsonb := '{}';
  one_row boolean;
  seen boolean;
  visible jsonb;
  result jsonb := '[]';
begin
  -- Whatever a policy runs, this transaction writes nothing.
  perform set_config('transaction_read_only', 'on', true);
  for item in select value from jsonb_array_elements(checks) loop
    visible := '[]';
    begin
      entity := (item ->> 'entity')::oid;
      -- The row lookup, built once per table and call: for one row (the usual case) a plain EXISTS, which plans
      -- in about half the time of the form over an array of rows.
      one_row := jsonb_array_length(item -> 'rows') = 1;
      query := queries -> (item ->> 'entity') ->> one_row::text;
      if query is null then
        select string_agg(format('t.%I = ($1 -> 0 ->> %s)::%s', a.attname, c.ord - 1,
                                 format_type(a.atttypid, a.atttypmod)), ' and ' order by c.ord),
               string_agg(format('t.%I = (k.v ->> %s)::%s', a.attname, c.ord - 1,
                                 format_type(a.atttypid, a.atttypmod)), ' and ' order by c.ord),
               count(*)
          into condition, conditions, matched
          from jsonb_array_elements_text(item -> 'key') with ordinality as c(name, ord)
          join pg_attribute a on a.attrelid = entity and a.attname = c.name and a.attnum > 0 and not a.attisdropped;
        if matched = 0 or matched <> jsonb_array_length(item -> 'key') then
          raise exception 'realtime.visible_rows: table % has no columns %', entity::regclass, item -> 'key'
            using errcode = '42703';
        end if;
        queries := queries || jsonb_build_object(item ->> 'entity', jsonb_build_object(
          'true', format('select exists (select 1 from %s as t where %s)', entity::regclass, condition),
          'false', format('select coalesce(jsonb_agg(k.o - 1), ''[]'') from jsonb_array_elements($1)'
                          ' with ordinality as k(v, o) where exists (select 1 from %s as t where %s)',
                          entity::regclass, conditions)));
        query := queries -> (item ->> 'entity') ->> one_row::text;
      end if;
      claim_role := item -> 'claims' ->> 'role';
      if claim_role is not null and pg_has_role('authenticator', claim_role, 'member') then
        perform set_config('role', claim_role, true),
                set_config('request.jwt.claims', (item -> 'claims')::text, true),
                set_config('request.jwt.claim.sub', coalesce(item -> 'claims' ->> 'sub', ''), true),
                set_config('request.jwt.claim.role', claim_role, true),
                set_config('request.jwt.claim.email', coalesce(item -> 'claims' ->> 'email', ''), true);
        if one_row then
          execute query into seen using item -> 'rows';
          visible := case when seen then '[0]'::jsonb else '[]'::jsonb end;
        else
          execute query into visible using item -> 'rows';
        end if;
      end if;
    exception when others then
      -- The subscriber's grants or policies failed on these rows (no SELECT privilege, a `sub` that is not a
      -- uuid, …): it sees none of them, and the other checks still run.
      visible := '[]';
    end;
    result := result || jsonb_build_array(visible);
  end loop;
  return result;
end
$$;

revoke all on function realtime.visible_rows(jsonb) from public;
