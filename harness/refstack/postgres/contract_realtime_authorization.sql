-- Realtime Authorization: who may join, receive and send on a private channel (`config.private: true`), decided
-- by row-level security on realtime.messages as on Supabase (Realtime's tenant migrations: the table, its grants,
-- realtime.topic()). A project writes policies on the table; with none, RLS denies everyone but roles that bypass
-- it (service_role).
--
--   SELECT policy, extension 'broadcast'   join the channel and receive its broadcasts (no: the join is refused)
--   SELECT policy, extension 'presence'    receive presence_state and presence_diff
--   INSERT policy, extension 'broadcast'   send broadcasts (no: they are dropped, as Realtime drops them)
--   INSERT policy, extension 'presence'    track presence (no: tracks are ignored)
--
-- realtime.channel_permissions makes the check the way Realtime's Authorization module does: it inserts a probe
-- row per extension, becomes the caller (role, request.jwt.claims*, realtime.topic: transaction-local, as
-- PostgREST and Realtime set them), reads the rows back and inserts again, then undoes everything. The
-- subtransaction it undoes also resets the role, so the region's superuser connection is itself again.
--
--   realtime.channel_permissions('room:1', '{"role":"authenticated","sub":…}')
--     → {"broadcast": {"read": true, "write": false}, "presence": {"read": true, "write": false}}
--
-- It writes (and rolls back), so it fails on a hot standby (25006): private channels are authorised on a primary.
-- Not here: Realtime's broadcast persistence, which also stores messages in this table (partitioned by day).

create table realtime.messages (
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp not null default now(),
  inserted_at timestamp not null default now(),
  id uuid not null default gen_random_uuid(),
  primary key (id, inserted_at)
);
create index messages_topic_idx on realtime.messages (topic);
alter table realtime.messages enable row level security;

grant usage on schema realtime to anon, authenticated, service_role;
grant select, insert, update on realtime.messages to anon, authenticated, service_role;

-- The channel being authorised, for policies: `using (realtime.topic() = 'room:' || …)`.
create function realtime.topic() returns text
language sql stable
as $$ select nullif(current_setting('realtime.topic', true), '')::text; $$;

create function realtime.channel_permissions(channel_topic text, claims jsonb)
returns jsonb
language plpgsql volatile
as $$
declare
  claim_role text := claims ->> 'role';
  can jsonb := '{"broadcast": {"read": false, "write": false}, "presence": {"read": false, "write": false}}';
  ext text;
begin
  -- Only a role PostgREST could take (one granted to authenticator); anything else is refused outright.
  if claim_role is null or not pg_has_role('authenticator', claim_role, 'member') then
    return can;
  end if;
  begin
    insert into realtime.messages (topic, extension) values (channel_topic, 'broadcast'), (channel_topic, 'presence');
    perform set_config('role', claim_role, true),
            set_config('realtime.topic', channel_topic, true),
            set_config('request.jwt.claims', claims::text, true),
            set_config('request.jwt.claim.sub', coalesce(claims ->> 'sub', ''), true),
            set_config('request.jwt.claim.role', claim_role, true),
            set_config('request.jwt.claim.email', coalesce(claims ->> 'email', ''), true);
    foreach ext in array array['broadcast', 'presence'] loop
      begin
        if exists (select 1 from realtime.messages m where m.topic = channel_topic and m.extension = ext) then
          can := jsonb_set(can, array[ext, 'read'], 'true');
        end if;
      exception when insufficient_privilege then
        null;  -- no SELECT grant: no read
      end;
      begin
        insert into realtime.messages (topic, extension) values (channel_topic, ext);
        can := jsonb_set(can, array[ext, 'write'], 'true');
      exception when insufficient_privilege then
        null;  -- no INSERT grant, or no policy lets the row in (42501): no write
      end;
    end loop;
    -- Undo the probe rows and the caller's settings; the answer lives on in `can` (variables are not rolled back).
    raise sqlstate 'RT000';
  exception when sqlstate 'RT000' then
    null;
  end;
  return can;
end
$$;

revoke all on function realtime.channel_permissions(text, jsonb) from public;
