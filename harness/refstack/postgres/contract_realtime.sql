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
--
-- Cost (it was the busiest statement of `harness load`, docs/BENCHMARKS.md): each row lookup is a prepared
-- statement of the session, named after its text, so it is planned once per connection rather than once per
-- subscriber (a plan depends on the role, and PostgreSQL re-plans when the role or the table changes); and the
-- lookups run without a subtransaction each. A lookup that fails (no SELECT privilege, a `sub` that is not a
-- uuid, …) then fails the call: the caller calls again with `safe`, where each check runs in its own
-- subtransaction and a failing one sees nothing while the others still run.

create schema if not exists realtime;

create function realtime.visible_rows(checks jsonb, safe boolean default false)
returns jsonb
language plpgsql volatile
as $$
declare
  item jsonb;
  entity oid;
  condition text;
  matched int;
  claim_role text;
  form text;
  lookup text;
  lookup_sql text;
  statements jsonb := '{}';
  one_row boolean;
  visible jsonb;
  result jsonb := '[]';
begin
  -- Whatever a policy runs, this transaction writes nothing.
  perform set_config('transaction_read_only', 'on', true);
  for item in select value from jsonb_array_elements(checks) loop
    visible := '[]';
    entity := (item ->> 'entity')::oid;
    -- For one row (the usual case) a primary-key probe; for several, the form over an array of rows.
    one_row := jsonb_array_length(item -> 'rows') = 1;
    form := (item ->> 'entity') || ':' || one_row::text;
    lookup := statements ->> form;
    if lookup is null then
      select string_agg(format('t.%I = (%s ->> %s)::%s', a.attname, case when one_row then '$1 -> 0' else 'k.v' end,
                               c.ord - 1, format_type(a.atttypid, a.atttypmod)), ' and ' order by c.ord),
             count(*)
        into condition, matched
        from jsonb_array_elements_text(item -> 'key') with ordinality as c(name, ord)
        join pg_attribute a on a.attrelid = entity and a.attname = c.name and a.attnum > 0 and not a.attisdropped;
      if matched = 0 or matched <> jsonb_array_length(item -> 'key') then
        raise exception 'realtime.visible_rows: table % has no columns %', entity::regclass, item -> 'key'
          using errcode = '42703';
      end if;
      -- Each row is probed by its key (a scalar subquery per row): as EXISTS, the planner may make it a hash
      -- join that reads the whole table, which took 4.7 ms a call under `harness load` and grew with the table.
      if one_row then
        lookup_sql := format('select coalesce((select ''[0]''::jsonb from %s as t where %s limit 1), ''[]'')',
                             entity::regclass, condition);
      else
        lookup_sql := format('select coalesce(jsonb_agg(k.o - 1), ''[]'') from jsonb_array_elements($1)'
                             ' with ordinality as k(v, o) where (select true from %s as t where %s limit 1)',
                             entity::regclass, condition);
      end if;
      -- Named after its text: a changed table, key or type is another statement, never a stale one.
      lookup := 'realtime_visible_' || md5(lookup_sql);
      if not exists (select 1 from pg_prepared_statements where name = lookup) then
        execute format('prepare %I(jsonb) as %s', lookup, lookup_sql);
      end if;
      statements := statements || jsonb_build_object(form, lookup);
    end if;
    claim_role := item -> 'claims' ->> 'role';
    if claim_role is not null and pg_has_role('authenticator', claim_role, 'member') then
      perform set_config('role', claim_role, true),
              set_config('request.jwt.claims', (item -> 'claims')::text, true),
              set_config('request.jwt.claim.sub', coalesce(item -> 'claims' ->> 'sub', ''), true),
              set_config('request.jwt.claim.role', claim_role, true),
              set_config('request.jwt.claim.email', coalesce(item -> 'claims' ->> 'email', ''), true);
      if safe then
        begin
          execute format('execute %I(%L)', lookup, item -> 'rows') into visible;
        exception when others then
          -- The subscriber's grants or policies failed on these rows: it sees none of them.
          visible := '[]';
        end;
      else
        execute format('execute %I(%L)', lookup, item -> 'rows') into visible;
      end if;
    end if;
    result := result || jsonb_build_array(visible);
  end loop;
  return result;
end
$$;

revoke all on function realtime.visible_rows(jsonb, boolean) from public;
