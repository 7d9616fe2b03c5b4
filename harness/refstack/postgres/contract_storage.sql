-- Storage's own database objects, on top of supabase.sql (applied once, at bootstrap, by supabase_admin).
--
-- Object bodies live in harness_internal.object_bodies, content-addressed by sha256; storage.objects.version
-- names the body an object points at (storage-api keeps the S3 object version there; here the body is the
-- version). Writing the body and the row in one transaction means a hot standby receives both together by
-- streaming replication, and the foreign key means no row ever points at a missing body.
--
-- The API roles may read and insert bodies, but only ever reach one through an object row: downloads join
-- storage.objects (filtered by its row-level security, as the caller) to the body it names, and an upload's body
-- insert rolls back with its row when the policies refuse that row. harness_internal is not an API schema
-- (PostgREST serves public only), so no request can name the table directly. (A policy on the bodies themselves,
-- "visible when a visible object points at it", would run the project's storage policies over other objects
-- sharing the content, and a policy that casts folder names, like the app's, could then fail on them.)

-- A body nobody points at any more (after a delete, an overwrite with other content, a bucket being emptied) is
-- removed by a trigger in the same transaction. An upload that reuses a body and a delete that would drop it
-- serialise on an advisory lock per body (uploads take it shared, the trigger exclusive), so a concurrent upload
-- never loses the body it just pointed at.

grant usage on schema harness_internal to anon, authenticated, service_role;

create index objects_version_idx on storage.objects (version);
alter table storage.objects
  add constraint objects_version_body_fkey foreign key (version) references harness_internal.object_bodies (sha256);

grant select, insert on harness_internal.object_bodies to anon, authenticated, service_role;

-- The advisory-lock key of one body: (class, hash of the sha256), in the two-int key space so it cannot collide
-- with single-bigint advisory locks taken elsewhere.
create function storage.harness_body_lock_class() returns int language sql immutable
  as $$ select 1937011556 $$;  -- 'stor' as an int
grant execute on function storage.harness_body_lock_class() to anon, authenticated, service_role;

create function storage.harness_release_body() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if old.version is null or (tg_op = 'UPDATE' and new.version is not distinct from old.version) then
    return null;
  end if;
  -- Waits for an upload that is reusing this body to commit, so the check below sees its row.
  perform pg_advisory_xact_lock(storage.harness_body_lock_class(), hashtext(old.version));
  if not exists (select 1 from storage.objects o where o.version = old.version) then
    delete from harness_internal.object_bodies b where b.sha256 = old.version;
  end if;
  return null;
end
$$;
create trigger harness_release_body after delete or update of version on storage.objects
  for each row execute function storage.harness_release_body();

-- storage-api reads a bucket's settings as its superuser for uploads and downloads (users normally have no
-- SELECT policy on storage.buckets); API requests run as the caller, so this is their way to the same row.
create function storage.harness_bucket(bucket text) returns setof storage.buckets
language sql stable security definer set search_path = '' as $$
  select * from storage.buckets b where b.id = bucket
$$;
revoke all on function storage.harness_bucket(text) from public;
grant execute on function storage.harness_bucket(text) to anon, authenticated, service_role;
