-- Realtime's own database objects (applied at bootstrap after supabase.sql, once).
--
-- realtime.visible_to decides which subscribers may see a changed row, the way Supabase's realtime.apply_rls
-- does: for each subscriber's JWT claims it becomes that subscriber (role and request.jwt.claims*, local to the
-- transaction, as PostgREST sets them) and asks `select exists (select 1 from <table> where <key> = <value>)`, so
-- the table's grants and row-level security policies decide. One call checks every subscriber of one change: one
-- round trip per change. The region calls it as supabase_admin, as one statement: the function makes its
-- transaction read-only first (it works on a hot standby too), and every setting it makes is local to that
-- transaction. Only claims whose role PostgREST could take (one granted to authenticator) are tried.

create schema if not exists realtime;

create function realtime.visible_to(entity oid, key_columns text[], key_values text[], claims jsonb[])
returns int[]
language plpgsql volatile
as $$
declare
  condition text;
  matched int;
  query text;
  claim_role text;
  seen boolean;
  visible int[] := '{}';
begin
  -- Whatever a policy runs, this transaction writes nothing.
  perform set_config('transaction_read_only', 'on', true);
  select string_agg(format('%I = $1[%s]::%s', a.attname, k.ord, format_type(a.atttypid, a.atttypmod)),
                    ' and ' order by k.ord),
         count(*)
    into condition, matched
    from unnest(key_columns) with ordinality as k(name, ord)
    join pg_attribute a on a.attrelid = entity and a.attname = k.name and a.attnum > 0 and not a.attisdropped;
  if matched = 0 or matched <> cardinality(key_columns) then
    raise exception 'realtime.visible_to: table % has no columns %', entity::regclass, key_columns
      using errcode = '42703';
  end if;
  query := format('select exists (select 1 from %s where %s)', entity::regclass, condition);
  for i in 1 .. coalesce(cardinality(claims), 0) loop
    claim_role := claims[i] ->> 'role';
    begin
      -- Only a role PostgREST could switch to (one granted to authenticator) is tried.
      if claim_role is null or not pg_has_role('authenticator', claim_role, 'member') then
        continue;
      end if;
      perform set_config('role', claim_role, true),
              set_config('request.jwt.claims', claims[i]::text, true),
              set_config('request.jwt.claim.sub', coalesce(claims[i] ->> 'sub', ''), true),
              set_config('request.jwt.claim.role', claim_role, true),
              set_config('request.jwt.claim.email', coalesce(claims[i] ->> 'email', ''), true);
      execute query into seen using key_values;
      if seen then
        visible := visible || i;
      end if;
    exception when others then
      -- The subscriber's grants or policies failed on this row (no SELECT privilege, a `sub` that is not a
      -- uuid, …): it does not see the row, and the other subscribers are still checked.
      null;
    end;
  end loop;
  return visible;
end
$$;

revoke all on function realtime.visible_to(oid, text[], text[], jsonb[]) from public;
