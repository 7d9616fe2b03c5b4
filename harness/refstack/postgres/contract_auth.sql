-- GoTrue's JSON renderings of its own rows, so the region's auth handlers get a user object (with its
-- identities) from the same statement that reads or writes the user, and never decode and re-encode it in
-- Python. Used only over GoTrue's admin connection (harness/refstack/region/auth_store.py); no API role can call
-- them. Field names follow GoTrue's models.User and models.Identity (docs/protocols.md §2.2).

create function harness_internal.gotrue_identity(i auth.identities) returns jsonb
language sql immutable as $$
  select jsonb_build_object(
    'identity_id', i.id,
    'id', i.provider_id,
    'user_id', i.user_id,
    'identity_data', i.identity_data,
    'provider', i.provider,
    'last_sign_in_at', i.last_sign_in_at,
    'created_at', i.created_at,
    'updated_at', i.updated_at,
    'email', i.email
  )
$$;

-- The user object with the identities given (a statement that has just inserted them passes them in: a
-- function's snapshot would not see rows written by the same statement).
create function harness_internal.gotrue_user(u auth.users, identities jsonb) returns jsonb
language sql immutable as $$
  select jsonb_build_object(
    'id', u.id,
    'aud', coalesce(u.aud, ''),
    'role', coalesce(u.role, ''),
    'email', coalesce(u.email, ''),
    'email_confirmed_at', u.email_confirmed_at,
    'phone', coalesce(u.phone, ''),
    'confirmed_at', u.confirmed_at,
    'last_sign_in_at', u.last_sign_in_at,
    'app_metadata', coalesce(u.raw_app_meta_data, '{}'::jsonb),
    'user_metadata', coalesce(u.raw_user_meta_data, '{}'::jsonb),
    'identities', coalesce(identities, '[]'::jsonb),
    'created_at', u.created_at,
    'updated_at', u.updated_at,
    'is_anonymous', u.is_anonymous
  )
$$;

-- The user object with its stored identities.
create function harness_internal.gotrue_user(u auth.users) returns jsonb
language sql stable as $$
  select harness_internal.gotrue_user(
    u,
    (select jsonb_agg(harness_internal.gotrue_identity(i) order by i.created_at, i.id)
       from auth.identities i where i.user_id = u.id)
  )
$$;

revoke all on function harness_internal.gotrue_identity(auth.identities) from public;
revoke all on function harness_internal.gotrue_user(auth.users, jsonb) from public;
revoke all on function harness_internal.gotrue_user(auth.users) from public;
