"""GoTrue's admin user API beyond create and get: update (`PUT /admin/users/{id}`), list (offset pages with the
`Link` and `X-Total-Count` headers), delete (hard, or soft with `should_soft_delete`), and the user's MFA factors
(`/admin/users/{id}/factors`). Every route needs a service-role bearer (403 not_admin otherwise).

Update applies what GoTrue's adminUserUpdate applies, in one transaction: email (the `email` identity follows, or
is created), password, role, `email_confirm`, app and user metadata (merged; a key set to null is removed),
`ban_duration` (a Go duration such as "24h", or "none" to lift a ban). A banned user cannot sign in (400
user_banned) and its tokens are refused (403 user_banned) until the ban ends.

A soft delete keeps the row, as GoTrue does: it sets deleted_at, replaces the email with a hash, drops the
password, the metadata and the identities' data, and deletes the user's factors and sessions.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from harness.refstack.region.auth_common import (
    MAX_VARCHAR,
    gotrue,
    json_body,
    json_text,
    metadata_object,
    new_password,
    optional_string,
    parse_email,
    require_admin,
    uuid_or_none,
)
from harness.refstack.region.auth_errors import AuthError
from harness.refstack.region.auth_input import read_json_object
from harness.refstack.region.auth_passwords import hash_password
from harness.refstack.region.state import CONFIG, DB

DEFAULT_PER_PAGE = 50
"""GoTrue's page size when `per_page` is absent or empty."""
MAX_PAGE = 1_000_000
"""Pages beyond this are clamped to it (the offset must fit the database's bigint)."""
MAX_PER_PAGE = 1000
_GO_DURATION = re.compile(r"^[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$|^[-+]?0$")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def target(request: web.Request) -> str:
    """GoTrue's loadUser: the `{user_id}` of the path, 404 when it is not a UUID."""
    user_id = uuid_or_none(request.match_info["user_id"])
    if user_id is None:
        raise AuthError(404, "validation_failed", "user_id must be an UUID")
    return user_id


def ban_duration(body: dict[str, Any]) -> float | None:
    """`ban_duration` as seconds (0: lift the ban), None when absent; 400 for what Go's time.ParseDuration refuses."""
    text = optional_string(body, "ban_duration")
    if not text:
        return None
    if text == "none":
        return 0.0
    if not _GO_DURATION.match(text):
        raise AuthError(400, "validation_failed", f'invalid format for ban duration: time: invalid duration "{text}"')
    seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(text))
    return -seconds if text.startswith("-") else seconds


_BAN = """
update auth.users as usr set banned_until = case when $2::float8 = 0 then null
                                                 else now() + make_interval(secs => $2::float8) end
where usr.id = $1::uuid
returning harness_internal.gotrue_user(usr)::text
"""


async def apply_ban(request: web.Request, user_json: str, seconds: float) -> str:
    """Ban the user just created (GoTrue's adminUserCreate applies `ban_duration` after the insert)."""
    user_id = json.loads(user_json)["id"]
    return str(await request.app[DB].admin.fetchval(_BAN, user_id, seconds))


# -- update ---------------------------------------------------------------------------------------------------------
# $1 id, $2 email, $3 hash, $4 role, $5 email_confirm, $6 app metadata patch, $7 user metadata patch, $8 ban (s).
_UPDATE = """
update auth.users as usr set
  email = coalesce($2::text, usr.email),
  encrypted_password = coalesce($3::text, usr.encrypted_password),
  role = coalesce($4::text, usr.role),
  email_confirmed_at = case when $5::boolean then coalesce(usr.email_confirmed_at, now())
                            else usr.email_confirmed_at end,
  raw_app_meta_data = case when $6::jsonb is null then usr.raw_app_meta_data
    else (coalesce(usr.raw_app_meta_data, '{}'::jsonb) || $6::jsonb)
         - array(select key from jsonb_each($6::jsonb) where value = 'null'::jsonb) end,
  raw_user_meta_data = case when $7::jsonb is null then usr.raw_user_meta_data
    else (coalesce(usr.raw_user_meta_data, '{}'::jsonb) || $7::jsonb)
         - array(select key from jsonb_each($7::jsonb) where value = 'null'::jsonb) end,
  banned_until = case when $8::float8 is null then usr.banned_until
                      when $8::float8 = 0 then null
                      else now() + make_interval(secs => $8::float8) end,
  is_anonymous = usr.is_anonymous and not ($2::text is not null and $5::boolean),
  updated_at = now()
where usr.id = $1::uuid
returning usr.id
"""
# The `email` identity follows the new email (or is created, for a user that had none, e.g. anonymous).
_UPDATE_IDENTITY = """
with updated as (
  update auth.identities set
    identity_data = identity_data || jsonb_build_object('email', $2::text, 'email_verified', $3::boolean),
    updated_at = now()
  where user_id = $1::uuid and provider = 'email'
  returning id
)
insert into auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at)
select $1::text, $1::uuid,
       jsonb_build_object('sub', $1::text, 'email', $2::text, 'email_verified', $3::boolean, 'phone_verified', false),
       'email', now(), now()
where not exists (select 1 from updated)
"""
_PROVIDERS = """
update auth.users set raw_app_meta_data = coalesce(raw_app_meta_data, '{}'::jsonb) || jsonb_build_object(
  'provider', coalesce(raw_app_meta_data ->> 'provider', 'email'),
  'providers', (select jsonb_agg(distinct provider) from auth.identities where user_id = $1::uuid))
where id = $1::uuid
"""
_USER = "select harness_internal.gotrue_user(usr)::text from auth.users usr where usr.id = $1::uuid"
_EMAIL_OWNER = "select id::text from auth.users where lower(email) = $1 and is_sso_user = false and id <> $2::uuid"


async def _update(request: web.Request) -> web.Response:
    require_admin(request)
    user_id = target(request)
    body = await read_json_object(request)
    email = parse_email(body["email"]) if optional_string(body, "email") else None
    role = optional_string(body, "role") or None
    if role is not None and len(role) > MAX_VARCHAR:
        raise AuthError(400, "validation_failed", f"role must be a role name of 1 to {MAX_VARCHAR} characters")
    app_patch = metadata_object("app_metadata", body["app_metadata"]) if body.get("app_metadata") is not None else None
    user_patch = (
        metadata_object("user_metadata", body["user_metadata"]) if body.get("user_metadata") is not None else None
    )
    ban = ban_duration(body)
    confirm = bool(body.get("email_confirm"))
    password_hash = None
    if body.get("password") is not None:
        password_hash = await hash_password(new_password(body["password"]), request.app[CONFIG].bcrypt_cost)
    db = request.app[DB]
    async with db.admin.acquire() as conn, conn.transaction():
        if email is not None and await conn.fetchval(_EMAIL_OWNER, email, user_id) is not None:
            raise AuthError(422, "email_exists", "A user with this email address has already been registered")
        found = await conn.fetchval(
            _UPDATE,
            user_id,
            email,
            password_hash,
            role,
            confirm,
            json.dumps(app_patch) if app_patch is not None else None,
            json.dumps(user_patch) if user_patch is not None else None,
            ban,
        )
        if found is None:
            raise AuthError(404, "user_not_found", "User not found")
        if email is not None:
            await conn.execute(_UPDATE_IDENTITY, user_id, email, confirm)
            await conn.execute(_PROVIDERS, user_id)
        user_json = await conn.fetchval(_USER, user_id)
    return json_text(request, str(user_json))


# -- list -----------------------------------------------------------------------------------------------------------
_LIST = """
select coalesce(jsonb_agg(harness_internal.gotrue_user(page.usr)
                          order by (page.usr).created_at desc, (page.usr).id desc), '[]'::jsonb)::text as users,
       (select count(*) from auth.users) as total
from (select usr from auth.users usr order by usr.created_at desc, usr.id desc limit $1 offset $2) page
"""


def _page_number(request: web.Request, name: str, default: int) -> int:
    """GoTrue's paginate: an absent or empty parameter takes the default; otherwise an unsigned integer."""
    text = request.query.get(name, "")
    if text == "":
        return default
    if not text.isdigit() or not text.isascii():
        raise AuthError(
            400,
            "validation_failed",
            f'Bad Pagination Parameters: strconv.ParseUint: parsing "{text}": invalid syntax',
        )
    return int(text)


async def _list(request: web.Request) -> web.Response:
    require_admin(request)
    page = min(MAX_PAGE, max(1, _page_number(request, "page", 1)))
    per_page = min(MAX_PER_PAGE, max(1, _page_number(request, "per_page", DEFAULT_PER_PAGE)))
    row = await request.app[DB].admin.fetchrow(_LIST, per_page, (page - 1) * per_page)
    assert row is not None  # an aggregate always yields a row
    total = int(row["total"])
    response = json_text(request, f'{{"users":{row["users"]},"aud":"authenticated"}}')
    response.headers["Link"] = _link_header(request, page, per_page, total)
    response.headers["X-Total-Count"] = str(total)
    return response


def _link_header(request: web.Request, page: int, per_page: int, total: int) -> str:
    """GoTrue's addPaginationHeaders: `next` while there is one, and always `last`, on the request's own URL."""
    last = -(-total // per_page)
    query = dict(request.query)
    query["per_page"] = query.get("per_page") or str(per_page)

    def at(number: int) -> str:
        return f"<{request.path}?{urlencode(sorted({**query, 'page': str(number)}.items()))}>"

    links = [f'{at(page + 1)}; rel="next"'] if last > page else []
    return ", ".join([*links, f'{at(last)}; rel="last"'])


# -- delete ---------------------------------------------------------------------------------------------------------
_HARD_DELETE = "delete from auth.users where id = $1::uuid returning id"
_SOFT_DELETE = """
with u as (
  update auth.users as usr set
    email = rtrim(translate(encode(sha256(convert_to(usr.id::text || coalesce(usr.email, ''), 'UTF8')), 'base64'),
                            '+/', '-_'), '='),
    phone = null, encrypted_password = null, email_change = '', phone_change = '',
    confirmation_token = '', recovery_token = '', email_change_token_current = '', email_change_token_new = '',
    phone_change_token = '', reauthentication_token = '', raw_user_meta_data = '{}'::jsonb, deleted_at = now()
  where usr.id = $1::uuid and usr.deleted_at is null
  returning usr.id
),
i as (
  update auth.identities set identity_data = '{}'::jsonb,
         provider_id = rtrim(translate(encode(sha256(convert_to(user_id::text || provider || ':' || provider_id,
                                                                'UTF8')), 'base64'), '+/', '-_'), '=')
  where user_id in (select id from u)
),
f as (delete from auth.mfa_factors where user_id in (select id from u)),
s as (delete from auth.sessions where user_id in (select id from u))
select exists (select 1 from auth.users where id = $1::uuid)
"""


async def _delete(request: web.Request) -> web.Response:
    require_admin(request)
    user_id = target(request)
    body = await read_json_object(request)
    soft = body.get("should_soft_delete", False)
    if not isinstance(soft, bool):
        raise AuthError(400, "bad_json", "Could not parse request body as JSON: should_soft_delete must be a boolean")
    db = request.app[DB].admin
    found = await db.fetchval(_SOFT_DELETE if soft else _HARD_DELETE, user_id)
    if not found:
        raise AuthError(404, "user_not_found", "User not found")
    return json_body(request, {})


# -- the user's factors ---------------------------------------------------------------------------------------------
_FACTORS = """
select exists (select 1 from auth.users where id = $1::uuid) as user_exists,
       coalesce((select jsonb_agg(harness_internal.gotrue_factor(f) order by f.created_at, f.id)
                 from auth.mfa_factors f where f.user_id = $1::uuid), '[]'::jsonb)::text as factors
"""
# Deleting a factor downgrades the sessions it raised to aal2 (GoTrue's DowngradeSessionsToAAL1).
_DELETE_FACTOR = """
with gone as (delete from auth.mfa_factors where id = $2::uuid and user_id = $1::uuid returning id),
downgraded as (
  update auth.sessions set aal = 'aal1', factor_id = null, updated_at = now()
  where factor_id in (select id from gone)
),
claims as (
  delete from auth.mfa_amr_claims where authentication_method = 'totp'
    and session_id in (select id from auth.sessions where factor_id in (select id from gone))
)
select id::text from gone
"""


async def _list_factors(request: web.Request) -> web.Response:
    require_admin(request)
    row = await request.app[DB].admin.fetchrow(_FACTORS, target(request))
    assert row is not None
    if not row["user_exists"]:
        raise AuthError(404, "user_not_found", "User not found")
    return json_text(request, row["factors"])


async def _delete_factor(request: web.Request) -> web.Response:
    require_admin(request)
    user_id = target(request)
    factor_id = uuid_or_none(request.match_info["factor_id"])
    if factor_id is None:
        raise AuthError(404, "validation_failed", "factor_id must be an UUID")
    db = request.app[DB].admin
    if await db.fetchval(_USER, user_id) is None:
        raise AuthError(404, "user_not_found", "User not found")
    if await db.fetchval(_DELETE_FACTOR, user_id, factor_id) is None:
        raise AuthError(404, "mfa_factor_not_found", "Factor not found")
    return json_body(request, {"id": factor_id})


def setup(app: web.Application) -> None:
    add = app.router
    add.add_get("/auth/v1/admin/users", gotrue(_list))
    add.add_put("/auth/v1/admin/users/{user_id}", gotrue(_update))
    add.add_delete("/auth/v1/admin/users/{user_id}", gotrue(_delete))
    add.add_get("/auth/v1/admin/users/{user_id}/factors", gotrue(_list_factors))
    add.add_delete("/auth/v1/admin/users/{user_id}/factors/{factor_id}", gotrue(_delete_factor))
