-- GoTrue's rows for the flows beyond password sign-in: e-mail one-time passwords and links (the hashed tokens on
-- auth.users), bans and soft deletes, and MFA (factors, challenges, and the authentication methods of each
-- session). Column names and types follow GoTrue's own migrations, so SQL written for a Supabase project reads
-- them unchanged. The user object now carries its factors and omits the optional fields it has no value for, as
-- GoTrue's encoding/json `omitempty` does. Applied after contract_auth.sql (harness/refstack/region/auth*.py).

alter table auth.users
  add column if not exists email_change_token_current varchar(255) default '',
  add column if not exists email_change_confirm_status smallint default 0,
  add column if not exists phone_change text default '',
  add column if not exists phone_change_token varchar(255) default '',
  add column if not exists phone_change_sent_at timestamptz,
  add column if not exists reauthentication_token varchar(255) default '',
  add column if not exists reauthentication_sent_at timestamptz;

create type auth.factor_type as enum ('totp', 'webauthn', 'phone');
create type auth.factor_status as enum ('unverified', 'verified');

create table auth.mfa_factors (
  id uuid primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  friendly_name text,
  factor_type auth.factor_type not null,
  status auth.factor_status not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  secret text,
  phone text,
  last_challenged_at timestamptz
);
create unique index mfa_factors_user_friendly_name_unique on auth.mfa_factors (friendly_name, user_id)
  where trim(friendly_name) <> '';
create index factor_id_created_at_idx on auth.mfa_factors (user_id, created_at);

create table auth.mfa_challenges (
  id uuid primary key,
  factor_id uuid not null references auth.mfa_factors (id) on delete cascade,
  created_at timestamptz not null,
  verified_at timestamptz,
  ip_address inet not null,
  otp_code text
);

-- How each session was authenticated (password, otp, anonymous, totp...): the access token's `amr` claim.
create table auth.mfa_amr_claims (
  session_id uuid not null references auth.sessions (id) on delete cascade,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  authentication_method text not null,
  id uuid primary key,
  constraint mfa_amr_claims_session_id_authentication_method_pkey unique (session_id, authentication_method)
);

create function harness_internal.gotrue_factor(f auth.mfa_factors) returns jsonb
language sql immutable as $$
  select jsonb_build_object(
    'id', f.id,
    'created_at', f.created_at,
    'updated_at', f.updated_at,
    'status', f.status,
    'factor_type', f.factor_type,
    'phone', coalesce(f.phone, ''),
    'last_challenged_at', f.last_challenged_at
  ) || case when coalesce(f.friendly_name, '') <> '' then jsonb_build_object('friendly_name', f.friendly_name)
            else '{}'::jsonb end
$$;

-- The session's authentication methods, most recent first (GoTrue's CalculateAALAndAMR).
create function harness_internal.gotrue_amr(session_id uuid) returns jsonb
language sql stable as $$
  select coalesce(jsonb_agg(jsonb_build_object('method', c.authentication_method,
                                               'timestamp', floor(extract(epoch from c.updated_at))::bigint)
                            order by c.updated_at desc, c.authentication_method), '[]'::jsonb)
  from auth.mfa_amr_claims c where c.session_id = gotrue_amr.session_id
$$;

create or replace function harness_internal.gotrue_user(u auth.users, identities jsonb) returns jsonb
language sql stable as $$
  select jsonb_build_object(
    'id', u.id,
    'aud', coalesce(u.aud, ''),
    'role', coalesce(u.role, ''),
    'email', coalesce(u.email, ''),
    'phone', coalesce(u.phone, ''),
    'app_metadata', coalesce(u.raw_app_meta_data, '{}'::jsonb),
    'user_metadata', coalesce(u.raw_user_meta_data, '{}'::jsonb),
    'identities', coalesce(identities, '[]'::jsonb),
    'created_at', u.created_at,
    'updated_at', u.updated_at,
    'is_anonymous', u.is_anonymous
  ) || jsonb_strip_nulls(jsonb_build_object(
    'email_confirmed_at', u.email_confirmed_at,
    'phone_confirmed_at', u.phone_confirmed_at,
    'confirmation_sent_at', u.confirmation_sent_at,
    'confirmed_at', u.confirmed_at,
    'recovery_sent_at', u.recovery_sent_at,
    'new_email', nullif(u.email_change, ''),
    'email_change_sent_at', u.email_change_sent_at,
    'new_phone', nullif(u.phone_change, ''),
    'phone_change_sent_at', u.phone_change_sent_at,
    'reauthentication_sent_at', u.reauthentication_sent_at,
    'invited_at', u.invited_at,
    'last_sign_in_at', u.last_sign_in_at,
    'factors', (select jsonb_agg(harness_internal.gotrue_factor(f) order by f.created_at, f.id)
                  from auth.mfa_factors f where f.user_id = u.id),
    'banned_until', u.banned_until,
    'deleted_at', u.deleted_at
  ))
$$;

revoke all on function harness_internal.gotrue_factor(auth.mfa_factors) from public;
revoke all on function harness_internal.gotrue_amr(uuid) from public;
