"""GoTrue's rows in the `auth` schema (users, identities, sessions, refresh tokens), over its admin connection.

Each operation is one SQL statement (data-modifying CTEs), so it is atomic without an explicit transaction and
costs one round trip; the user object comes back rendered by Postgres (harness_internal.gotrue_user, in
postgres/contract_auth.sql) and reaches the client without being decoded. Row-level security does not apply:
GoTrue connects as its own admin role, and so does this module (`Database.admin`, the superuser pool).

What Postgres does here, not Python: the `on_auth_user_created` trigger of the app's migration creates the
profile; the foreign keys cascade a deleted user to its identities, sessions (and their refresh tokens),
profile, memberships and messages; the unique index on auth.users(email) refuses a second account.

On a hot standby every write fails with SQLSTATE 25006 (asyncpg.ReadOnlySQLTransactionError); the caller turns
that into GoTrue's error shape. Reads (the user behind a token, the admin reads) work on a standby.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from enum import Enum
from typing import Any

import asyncpg

from harness.refstack.region.database import Database

INSTANCE_ID = "00000000-0000-0000-0000-000000000000"
"""GoTrue's instance_id for every row of a single-tenant project."""
EMAIL_UNIQUE_INDEX = "users_email_partial_key"
"""supabase.sql's unique index on auth.users(email): its violation means the email is taken."""
USERS_PRIMARY_KEY = "users_pkey"
"""auth.users' primary key: violated by an admin create naming an id that has a user."""


class EmailTaken(Exception):
    """A user with this email already exists."""


class IdTaken(Exception):
    """A user with this id already exists (an admin create naming its `id`)."""


class RefreshRefused(Enum):
    NOT_FOUND = "refresh_token_not_found"
    ALREADY_USED = "refresh_token_already_used"


@dataclass(frozen=True)
class Login:
    """What the password grant needs before it checks the password."""

    user_id: str
    password_hash: str | None
    confirmed: bool
    banned: bool


@dataclass(frozen=True)
class Session:
    """A session just started or refreshed: what its access token carries, and the user object to return."""

    user_id: str
    email: str
    role: str
    app_metadata: dict[str, Any]
    user_metadata: dict[str, Any]
    session_id: str
    aal: str
    signed_in_at: float
    refresh_token: str
    user_json: str
    amr: list[dict[str, Any]]
    is_anonymous: bool

    @classmethod
    def from_row(cls, row: asyncpg.Record, refresh_token: str, method: str = "password") -> Session:
        """`method`: how a session started by this very statement was authenticated (its amr claim row is not yet
        visible to the statement's own snapshot); a refreshed session reads its claims."""
        signed_in_at = float(row["signed_in_at"])
        amr = json.loads(row["amr"]) or [{"method": method, "timestamp": int(signed_in_at)}]
        return cls(
            user_id=row["user_id"],
            email=row["email"] or "",
            role=row["role"] or "authenticated",
            app_metadata=json.loads(row["app_metadata"]),
            user_metadata=json.loads(row["user_metadata"]),
            session_id=row["session_id"],
            aal=row["aal"] or "aal1",
            signed_in_at=signed_in_at,
            refresh_token=refresh_token,
            user_json=row["user_json"],
            amr=amr,
            is_anonymous=bool(row["is_anonymous"]),
        )


def new_refresh_token() -> str:
    return secrets.token_urlsafe(24)


# -- SQL --------------------------------------------------------------------------------------------------------
# Fragments name the new session `s` (id, aal, created_at) and the user row `u.usr` (an auth.users value). A session
# starts only when a refresh token ($2) is given: admin create passes none. `method` names the parameter holding
# the session's authentication method (its amr claim: password, otp, anonymous).
def session_insert(method: str) -> str:
    return f"""
  s as (
    insert into auth.sessions (id, user_id, aal, created_at, updated_at)
    select gen_random_uuid(), (u.usr).id, 'aal1', now(), now() from u where $2::text is not null
    returning id, aal, created_at
  ),
  t as (
    insert into auth.refresh_tokens (instance_id, token, user_id, session_id, revoked, created_at, updated_at)
    select $1::uuid, $2::text, (u.usr).id::text, s.id, false, now(), now() from u, s
  ),
  amr as (
    insert into auth.mfa_amr_claims (id, session_id, created_at, updated_at, authentication_method)
    select gen_random_uuid(), s.id, s.created_at, s.created_at, {method}::text from s
  )"""


SESSION_COLUMNS = """
  s.id::text as session_id, s.aal::text as aal, extract(epoch from s.created_at)::float8 as signed_in_at,
  (u.usr).id::text as user_id, (u.usr).email as email, (u.usr).role as role,
  coalesce((u.usr).raw_app_meta_data, '{}'::jsonb)::text as app_metadata,
  coalesce((u.usr).raw_user_meta_data, '{}'::jsonb)::text as user_metadata,
  (u.usr).is_anonymous as is_anonymous, harness_internal.gotrue_amr(s.id)::text as amr"""

# $1 instance, $2 refresh token (null: no session), $3 role, $4 email, $5 hash, $6 confirmed, $7 app, $8 user meta,
# $9 id (null: a random one), $10 the session's authentication method, $11 invited (with a confirmation token $12).
_CREATE_USER = f"""
with u as (
  insert into auth.users as usr (
    instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, last_sign_in_at,
    raw_app_meta_data, raw_user_meta_data, created_at, updated_at, is_sso_user, is_anonymous,
    invited_at, confirmation_token, confirmation_sent_at
  ) values (
    $1::uuid, coalesce($9::uuid, gen_random_uuid()), 'authenticated', $3, $4::text, $5, case when $6 then now() end,
    case when $2::text is not null then now() end, $7::jsonb, $8::jsonb, now(), now(), false, $4::text is null,
    case when $11 then now() end, coalesce($12::text, ''), case when $12::text is not null then now() end
  )
  returning usr
),
i as (
  insert into auth.identities as idn (
    provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at
  )
  select (u.usr).id::text, (u.usr).id,
         jsonb_build_object('sub', (u.usr).id::text, 'email', (u.usr).email, 'email_verified', $6::boolean,
                            'phone_verified', false),
         'email', (u.usr).last_sign_in_at, now(), now()
  from u where (u.usr).email is not null
  returning idn
),
{session_insert("$10")}
select {SESSION_COLUMNS},
  harness_internal.gotrue_user(
    u.usr, (select jsonb_agg(harness_internal.gotrue_identity(i.idn)) from i)
  )::text as user_json
from u left join s on true
"""

_FIND_LOGIN = """
select id::text as user_id, encrypted_password, email_confirmed_at is not null as confirmed,
       coalesce(banned_until > now(), false) as banned
from auth.users
where instance_id = $1::uuid and lower(email) = $2 and is_sso_user = false and deleted_at is null
"""

# $1 instance, $2 refresh token, $3 user id, $4 the authentication method (password, otp...).
_SIGN_IN = f"""
with u as (
  update auth.users as usr set last_sign_in_at = now(), updated_at = now()
  where usr.id = $3::uuid
  returning usr
),
{session_insert("$4")},
i as (
  update auth.identities set last_sign_in_at = now(), updated_at = now()
  where user_id = $3::uuid and provider = 'email'
)
select {SESSION_COLUMNS}, harness_internal.gotrue_user(u.usr)::text as user_json
from u, s
"""

# $1 instance, $2 new refresh token, $3 presented refresh token. A used token is revoked, never deleted, so a
# second presentation finds it revoked (refresh_token_already_used); the row lock makes concurrent refreshes of
# one token yield exactly one new token.
_REFRESH = f"""
with old as (
  update auth.refresh_tokens set revoked = true, updated_at = now()
  where token = $3 and revoked = false
  returning session_id, user_id
),
s as (
  update auth.sessions as ses set refreshed_at = now() at time zone 'utc', updated_at = now()
  from old where ses.id = old.session_id
  returning ses.id, ses.aal, ses.created_at
),
t as (
  insert into auth.refresh_tokens (instance_id, token, user_id, session_id, parent, revoked, created_at, updated_at)
  select $1::uuid, $2, old.user_id, s.id, $3, false, now(), now() from old, s
),
u as (
  select usr from auth.users usr, old where usr.id = old.user_id::uuid
)
select {SESSION_COLUMNS}, harness_internal.gotrue_user(u.usr)::text as user_json
from u, s
"""

_REFRESH_TOKEN_STATE = "select revoked from auth.refresh_tokens where token = $1"

# $1 user id, $2 the token's session id (null when the token names none).
_USER_BEHIND_TOKEN = """
select harness_internal.gotrue_user(usr)::text as user_json,
       $2::uuid is null or exists (select 1 from auth.sessions where id = $2::uuid and user_id = usr.id)
         as session_alive,
       coalesce(usr.banned_until > now(), false) as banned,
       usr.email, usr.email_confirmed_at is not null as confirmed,
       (select aal::text from auth.sessions where id = $2::uuid) as aal
from auth.users usr where usr.id = $1::uuid
"""

# $1 user id, $2 metadata patch (null: unchanged; a key set to null is removed, as GoTrue does), $3 new hash.
_UPDATE_USER = """
update auth.users as usr set
  raw_user_meta_data = case when $2::jsonb is null then usr.raw_user_meta_data
    else (coalesce(usr.raw_user_meta_data, '{}'::jsonb) || $2::jsonb)
         - array(select key from jsonb_each($2::jsonb) where value = 'null'::jsonb) end,
  encrypted_password = coalesce($3, usr.encrypted_password),
  updated_at = now()
where usr.id = $1::uuid
returning harness_internal.gotrue_user(usr)::text as user_json
"""

# $1 user id, $2 the token's session id, $3 scope. As GoTrue, nothing is ended for a token whose user or session is
# gone (the statement reports which); the sessions' refresh tokens go with them (on delete cascade).
_END_SESSIONS = """
with caller as (
  select exists (select 1 from auth.users where id = $1::uuid) as user_exists,
         $2::uuid is null or exists (select 1 from auth.sessions where id = $2::uuid and user_id = $1::uuid)
           as session_alive
),
ended as (
  delete from auth.sessions
  using caller
  where caller.user_exists and caller.session_alive and user_id = $1::uuid
    and case $3::text when 'local' then id = $2::uuid when 'others' then id is distinct from $2::uuid else true end
)
select user_exists, session_alive from caller
"""

_LIST_USERS = """
select coalesce(jsonb_agg(harness_internal.gotrue_user(page.usr)
                          order by (page.usr).created_at desc, (page.usr).id desc), '[]'::jsonb)::text as users,
       (select count(*) from auth.users) as total
from (select usr from auth.users usr order by usr.created_at desc, usr.id desc limit $1 offset $2) page
"""

_GET_USER = "select harness_internal.gotrue_user(usr)::text from auth.users usr where usr.id = $1::uuid"
_DELETE_USER = "delete from auth.users where id = $1::uuid returning id"


# -- operations ---------------------------------------------------------------------------------------------------
async def create_user(
    db: Database,
    *,
    email: str | None,
    password_hash: str | None,
    role: str,
    user_metadata: dict[str, Any],
    app_metadata: dict[str, Any],
    confirmed: bool,
    start_session: bool,
    user_id: str | None = None,
    method: str = "password",
    confirmation_token: str | None = None,
    invited: bool = False,
) -> tuple[str, Session | None]:
    """Insert the user (with `user_id`, or a random one) and its `email` identity (the trigger adds the profile),
    and with `start_session` its first session (authenticated by `method`). No email: an anonymous user, with no
    identity. `confirmation_token` (a hashed OTP) waits for /verify; `invited` stamps invited_at. Returns the user
    object and the session; EmailTaken when the email has an account, IdTaken when the id has."""
    refresh = new_refresh_token() if start_session else None
    try:
        row = await db.admin.fetchrow(
            _CREATE_USER,
            INSTANCE_ID,
            refresh,
            role,
            email,
            password_hash,
            confirmed,
            json.dumps(app_metadata),
            json.dumps(user_metadata),
            user_id,
            method,
            invited,
            confirmation_token,
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == EMAIL_UNIQUE_INDEX:
            raise EmailTaken(email) from None
        if exc.constraint_name == USERS_PRIMARY_KEY:
            raise IdTaken(user_id) from None
        raise
    assert row is not None  # an insert ... returning always yields its row
    session = Session.from_row(row, refresh, method) if refresh is not None else None
    return row["user_json"], session


async def find_login(db: Database, email: str) -> Login | None:
    row = await db.admin.fetchrow(_FIND_LOGIN, INSTANCE_ID, email)
    if row is None:
        return None
    return Login(row["user_id"], row["encrypted_password"], row["confirmed"], row["banned"])


async def sign_in(db: Database, user_id: str, method: str = "password") -> Session | None:
    """A new session (aal1, authenticated by `method`) with its first refresh token; None when the user vanished
    meanwhile."""
    refresh = new_refresh_token()
    row = await db.admin.fetchrow(_SIGN_IN, INSTANCE_ID, refresh, user_id, method)
    return Session.from_row(row, refresh, method) if row is not None else None


async def refresh(db: Database, presented: str) -> Session | RefreshRefused:
    """Rotate `presented`: revoke it and issue its successor in the same session."""
    successor = new_refresh_token()
    row = await db.admin.fetchrow(_REFRESH, INSTANCE_ID, successor, presented)
    if row is not None:
        return Session.from_row(row, successor)
    revoked = await db.admin.fetchval(_REFRESH_TOKEN_STATE, presented)
    return RefreshRefused.ALREADY_USED if revoked else RefreshRefused.NOT_FOUND


@dataclass(frozen=True)
class TokenUser:
    """The user behind an access token: its object, and what the routes that need a signed-in user check."""

    user_json: str
    session_alive: bool
    banned: bool
    email: str | None
    confirmed: bool
    aal: str | None
    """The session's assurance level now (aal2 once a factor was verified in it); None without a session."""


async def user_behind_token(db: Database, user_id: str, session_id: str | None) -> TokenUser | None:
    """The token's user and whether its session still exists (logout ends it); None for no such user."""
    row = await db.admin.fetchrow(_USER_BEHIND_TOKEN, user_id, session_id)
    if row is None:
        return None
    return TokenUser(row["user_json"], row["session_alive"], row["banned"], row["email"], row["confirmed"], row["aal"])


async def update_user(
    db: Database, user_id: str, *, metadata_patch: dict[str, Any] | None, password_hash: str | None
) -> str | None:
    patch = json.dumps(metadata_patch) if metadata_patch is not None else None
    result = await db.admin.fetchval(_UPDATE_USER, user_id, patch, password_hash)
    return str(result) if result is not None else None


async def end_sessions(db: Database, user_id: str, session_id: str | None, scope: str) -> tuple[bool, bool]:
    """End the user's sessions in `scope` (global, local: the token's, others: all but the token's). Returns whether
    the user exists and whether the token's session was still alive; when either is False nothing was ended."""
    row = await db.admin.fetchrow(_END_SESSIONS, user_id, session_id, scope)
    assert row is not None  # a select without from-clause filters always yields its row
    return bool(row["user_exists"]), bool(row["session_alive"])


async def list_users(db: Database, limit: int, offset: int) -> tuple[str, int]:
    """One page of user objects (newest first, as GoTrue sorts by default) as a JSON array, and the total."""
    row = await db.admin.fetchrow(_LIST_USERS, limit, offset)
    assert row is not None  # an aggregate always yields a row
    return row["users"], int(row["total"])


async def get_user(db: Database, user_id: str) -> str | None:
    result = await db.admin.fetchval(_GET_USER, user_id)
    return str(result) if result is not None else None


async def delete_user(db: Database, user_id: str) -> bool:
    """Delete the user; Postgres cascades to everything that references it. False when there was none."""
    return await db.admin.fetchval(_DELETE_USER, user_id) is not None
