"""GoTrue at `/auth/v1` (docs/protocols.md §2): sign-up with autoconfirm, password and refresh grants, /user, logout,
and the admin user API. Also the two checks every route module shares: Kong's key-auth and token verification.

    request ─► Kong key-auth ─► body (bounded, parsed, checked: auth_input) ─► validation ─► bcrypt off the loop
            ─► one SQL statement on GoTrue's admin connection (auth_store) ─► access token + the user object
               Postgres rendered

Users, identities, sessions and refresh tokens live in Postgres's `auth` schema; the profile comes from the
migration's `on_auth_user_created` trigger, and deleting a user cascades through the migration's foreign keys.
Refresh tokens rotate: a used one is revoked, and presenting it again answers `refresh_token_already_used`
(GoTrue's 10 s reuse interval is not modelled). Logout ends sessions (scope global, local or others); their refresh
tokens go with them, and tokens of an ended session are refused by /user (`session_not_found`), as GoTrue does.

On a read replica (a hot standby) every write fails in Postgres; forwarding.py sends sign-up, sign-in, refresh and
logout to the primary, and one that reaches this module anyway gets a 503 in GoTrue's shape saying why. Reading the
user behind a token works on the standby.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web

from harness.model import keys
from harness.model.keys import Claims, TokenError
from harness.refstack.region import auth_store
from harness.refstack.region.auth_errors import API_VERSION, API_VERSION_HEADER, AuthError, error_response
from harness.refstack.region.auth_input import read_json_object
from harness.refstack.region.auth_passwords import (
    MAX_PASSWORD_BYTES,
    MIN_PASSWORD_LENGTH,
    check_password,
    hash_password,
)
from harness.refstack.region.state import CONFIG, DB, api_key, bearer_token
from harness.refstack.region.token_cache import verify_token

log = logging.getLogger(__name__)

MAX_VARCHAR = 255
"""auth.users' email and role, and refresh tokens, are varchar(255): longer values are refused before they reach
the database."""
MAX_PAGE = 1_000_000
"""Admin list pages beyond this are clamped to it (the offset must fit the database's bigint)."""
READ_ONLY_SQLSTATE = "25006"
UNAVAILABLE_SQLSTATE_CLASSES = ("08", "57P")
"""Connection exceptions, and admin shutdown / crash shutdown / cannot connect now."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# -- Kong key-auth and token verification (shared by rest.py and functions.py) --------------------------------------
def gateway_key_error(request: web.Request) -> web.Response | None:
    """Kong's key-auth on /auth/v1 and /rest/v1: the `apikey` must be one of the project keys."""
    config = request.app[CONFIG]
    key = api_key(request)
    if not key:
        return web.json_response({"message": "No API key found in request"}, status=401)
    if key not in (config.anon_key, config.service_role_key):
        return web.json_response({"message": "Invalid authentication credentials"}, status=401)
    return None


# -- responses ------------------------------------------------------------------------------------------------------
def _version_headers(request: web.Request) -> dict[str, str] | None:
    return {API_VERSION_HEADER: API_VERSION} if request.headers.get(API_VERSION_HEADER) else None


def _json_text(request: web.Request, text: str, status: int = 200) -> web.Response:
    """A body already rendered as JSON (by Postgres), sent without decoding it."""
    return web.Response(text=text, status=status, content_type="application/json", headers=_version_headers(request))


def _session_response(request: web.Request, session: auth_store.Session) -> web.Response:
    """GoTrue's token response: a fresh access token for the session, its refresh token, and the user object."""
    config = request.app[CONFIG]
    access, expires_at = keys.mint_access_token(
        user_id=session.user_id,
        email=session.email,
        issuer=_issuer(request),
        session_id=session.session_id,
        ttl_s=config.access_token_ttl_s,
        user_metadata=session.user_metadata,
        app_metadata=session.app_metadata or None,
        secret=config.jwt_secret,
        role=session.role,
        aal=session.aal,
        signed_in_at=session.signed_in_at,
    )
    head = json.dumps(
        {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": config.access_token_ttl_s,
            "expires_at": expires_at,
            "refresh_token": session.refresh_token,
        }
    )
    return _json_text(request, f'{head[:-1]},"user":{session.user_json}}}')


def _issuer(request: web.Request) -> str:
    base = request.app[CONFIG].public_url or f"{request.scheme}://{request.host}"
    return base.rstrip("/") + "/auth/v1"


# -- input ----------------------------------------------------------------------------------------------------------
def _email(value: Any, *, action: str = "signup") -> str:
    if not isinstance(value, str) or not value.strip():
        raise AuthError(400, "validation_failed", f"To {action}, please provide your email")
    email = value.strip().lower()
    if len(email) > MAX_VARCHAR or not _EMAIL.match(email):
        raise AuthError(400, "validation_failed", "Unable to validate email address: invalid format")
    return email


def _new_password(value: Any) -> str:
    if not isinstance(value, str) or len(value) < MIN_PASSWORD_LENGTH:
        raise AuthError(
            422,
            "weak_password",
            f"Password should be at least {MIN_PASSWORD_LENGTH} characters.",
            {"weak_password": {"reasons": ["length"]}},
        )
    if len(value.encode()) > MAX_PASSWORD_BYTES:
        raise AuthError(400, "validation_failed", f"Password cannot be longer than {MAX_PASSWORD_BYTES} characters")
    return value


def _metadata(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AuthError(400, "validation_failed", f"{name} must be a JSON object, got {json.dumps(value)[:80]}")
    return value


def _uuid_or_none(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


# -- the caller -----------------------------------------------------------------------------------------------------
def _caller(request: web.Request) -> Claims:
    token = bearer_token(request)
    if token is None:
        raise AuthError(401, "no_authorization", "This endpoint requires a Bearer token")
    try:
        return verify_token(token, request.app[CONFIG].jwt_secret)
    except TokenError as exc:
        raise AuthError(403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {exc}") from None


async def _caller_user(request: web.Request) -> tuple[Claims, str, str]:
    """The verified claims, the user's id and the user object; 403 when the user or the token's session is gone."""
    claims = _caller(request)
    user_id = _uuid_or_none(claims.sub)
    session_id = _uuid_or_none(claims.raw.get("session_id"))
    found = await auth_store.user_behind_token(request.app[DB], user_id, session_id) if user_id else None
    if user_id is None or found is None:
        raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
    user_json, session_alive = found
    if not session_alive:
        raise AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist")
    return claims, user_id, user_json


def _require_admin(request: web.Request) -> None:
    if not _caller(request).is_service:
        raise AuthError(403, "not_admin", "User not allowed")


# -- sign-up and grants ---------------------------------------------------------------------------------------------
def _requested_id(value: Any) -> str | None:
    """An admin create's optional `id` (GoTrue's adminUserCreate: any UUID but the nil one)."""
    if value is None or value == "":
        return None
    user_id = _uuid_or_none(value)
    if user_id is None:
        raise AuthError(400, "validation_failed", "ID must conform to the uuid v4 format")
    if user_id == str(uuid.UUID(int=0)):
        raise AuthError(400, "validation_failed", "ID cannot be a nil uuid")
    return user_id


async def _create(request: web.Request, body: dict[str, Any], *, admin: bool) -> tuple[str, auth_store.Session | None]:
    """Validate, hash and store a new user; sign-up also starts its first session (autoconfirm)."""
    email = _email(body.get("email"))
    password = _new_password(body.get("password"))
    user_metadata = _metadata("user_metadata" if admin else "data", body.get("user_metadata" if admin else "data"))
    app_metadata = {"provider": "email", "providers": ["email"]}
    role = "authenticated"
    user_id = _requested_id(body.get("id")) if admin else None
    if admin:
        app_metadata |= _metadata("app_metadata", body.get("app_metadata"))
        requested = body.get("role")
        if requested is not None:
            if not isinstance(requested, str) or not 0 < len(requested) <= MAX_VARCHAR:
                raise AuthError(400, "validation_failed", f"role must be a role name of 1 to {MAX_VARCHAR} characters")
            role = requested
    password_hash = await hash_password(password, request.app[CONFIG].bcrypt_cost)
    try:
        return await auth_store.create_user(
            request.app[DB],
            email=email,
            password_hash=password_hash,
            role=role,
            user_metadata=user_metadata,
            app_metadata=app_metadata,
            confirmed=bool(body.get("email_confirm")) if admin else True,
            start_session=not admin,
            user_id=user_id,
        )
    except auth_store.IdTaken:
        raise AuthError(422, "user_already_exists", "A user with this ID has already been registered") from None
    except auth_store.EmailTaken:
        if admin:
            raise AuthError(422, "email_exists", "A user with this email address has already been registered") from None
        raise AuthError(422, "user_already_exists", "User already registered") from None


async def _signup(request: web.Request) -> web.Response:
    _, session = await _create(request, await read_json_object(request), admin=False)
    assert session is not None  # sign-up always starts a session
    return _session_response(request, session)


async def _token(request: web.Request) -> web.Response:
    grant = request.query.get("grant_type", "")
    if grant not in ("password", "refresh_token"):
        raise AuthError(400, "invalid_credentials", "unsupported_grant_type")
    body = await read_json_object(request)
    if grant == "password":
        return _session_response(request, await _password_grant(request, body))
    return _session_response(request, await _refresh_grant(request, body))


async def _password_grant(request: web.Request, body: dict[str, Any]) -> auth_store.Session:
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        raise AuthError(400, "validation_failed", "Sign in with email and password: both must be strings")
    db = request.app[DB]
    login = await auth_store.find_login(db, email.strip().lower())
    if login is None or not await check_password(password, login.password_hash):
        raise AuthError(400, "invalid_credentials", "Invalid login credentials")
    if not login.confirmed:
        raise AuthError(400, "email_not_confirmed", "Email not confirmed")
    session = await auth_store.sign_in(db, login.user_id)
    if session is None:
        raise AuthError(400, "invalid_credentials", "Invalid login credentials")
    return session


async def _refresh_grant(request: web.Request, body: dict[str, Any]) -> auth_store.Session:
    token = body.get("refresh_token")
    if not isinstance(token, str) or not token:
        raise AuthError(400, "validation_failed", "refresh_token is required")
    if len(token) > MAX_VARCHAR:  # auth.refresh_tokens.token is varchar(255): no longer token was ever issued
        raise AuthError(
            400, auth_store.RefreshRefused.NOT_FOUND.value, "Invalid Refresh Token: Refresh Token Not Found"
        )
    result = await auth_store.refresh(request.app[DB], token)
    if result is auth_store.RefreshRefused.ALREADY_USED:
        raise AuthError(400, result.value, "Invalid Refresh Token: Already Used")
    if result is auth_store.RefreshRefused.NOT_FOUND:
        raise AuthError(400, result.value, "Invalid Refresh Token: Refresh Token Not Found")
    return result


# -- the signed-in user ---------------------------------------------------------------------------------------------
async def _get_user_route(request: web.Request) -> web.Response:
    _, _, user_json = await _caller_user(request)
    return _json_text(request, user_json)


async def _put_user(request: web.Request) -> web.Response:
    _, user_id, user_json = await _caller_user(request)
    body = await read_json_object(request)
    patch = _metadata("data", body["data"]) if "data" in body else None
    password_hash = None
    if "password" in body:
        password = _new_password(body["password"])
        password_hash = await hash_password(password, request.app[CONFIG].bcrypt_cost)
    if patch is not None or password_hash is not None:
        updated = await auth_store.update_user(
            request.app[DB], user_id, metadata_patch=patch, password_hash=password_hash
        )
        if updated is None:
            raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
        user_json = updated
    return _json_text(request, user_json)


async def _logout(request: web.Request) -> web.Response:
    claims = _caller(request)
    scope = request.query.get("scope", "global")
    if scope not in ("global", "local", "others"):
        raise AuthError(400, "validation_failed", "Unsupported logout scope: use global, local or others")
    user_id = _uuid_or_none(claims.sub)
    session_id = _uuid_or_none(claims.raw.get("session_id"))
    user_exists, session_alive = (
        await auth_store.end_sessions(request.app[DB], user_id, session_id, scope) if user_id else (False, False)
    )
    if not user_exists:
        raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
    if not session_alive:
        raise AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist")
    return web.Response(status=204)


# -- admin ----------------------------------------------------------------------------------------------------------
async def _admin_create(request: web.Request) -> web.Response:
    _require_admin(request)
    user_json, _ = await _create(request, await read_json_object(request), admin=True)
    return _json_text(request, user_json)


async def _admin_list(request: web.Request) -> web.Response:
    _require_admin(request)
    try:
        page = int(request.query.get("page", "1"))
        per_page = int(request.query.get("per_page", "50"))
    except ValueError:
        raise AuthError(
            400, "validation_failed", "page and per_page must be integers, e.g. page=1&per_page=50"
        ) from None
    page = min(MAX_PAGE, max(1, page))
    per_page = min(1000, max(1, per_page))
    users, total = await auth_store.list_users(request.app[DB], per_page, (page - 1) * per_page)
    response = _json_text(request, f'{{"users":{users},"aud":"authenticated"}}')
    response.headers["X-Total-Count"] = str(total)
    return response


def _admin_target(request: web.Request) -> str:
    user_id = _uuid_or_none(request.match_info["user_id"])
    if user_id is None:
        raise AuthError(404, "user_not_found", "User not found")
    return user_id


async def _admin_get(request: web.Request) -> web.Response:
    _require_admin(request)
    user_json = await auth_store.get_user(request.app[DB], _admin_target(request))
    if user_json is None:
        raise AuthError(404, "user_not_found", "User not found")
    return _json_text(request, user_json)


async def _admin_delete(request: web.Request) -> web.Response:
    _require_admin(request)
    if not await auth_store.delete_user(request.app[DB], _admin_target(request)):
        raise AuthError(404, "user_not_found", "User not found")
    return _json_text(request, "{}")


async def _settings(request: web.Request) -> web.Response:
    return web.json_response(
        {"external": {"email": True, "phone": False}, "disable_signup": False, "mailer_autoconfirm": True},
        headers=_version_headers(request),
    )


def _gotrue(handler: Handler) -> Handler:
    """Kong's key-auth, then the handler, with AuthError and database errors rendered as GoTrue errors."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        rejected = gateway_key_error(request)
        if rejected is not None:
            return rejected
        try:
            return await handler(request)
        except AuthError as exc:
            return error_response(request, exc)
        except asyncpg.PostgresError as exc:
            return error_response(request, _database_error(request, exc))
        except (OSError, asyncpg.InterfaceError) as exc:  # the database restarting (failover drills) or gone
            log.warning("auth: database unreachable on %s %s: %s", request.method, request.path, exc)
            return error_response(request, AuthError(503, "unexpected_failure", "Database unavailable, retry"))

    return wrapped


def _database_error(request: web.Request, exc: asyncpg.PostgresError) -> AuthError:
    """A standby's refusal to write, a database starting or stopping (503: supabase_auth retries those), or a
    real failure (500, logged), in GoTrue's error shape."""
    if exc.sqlstate == READ_ONLY_SQLSTATE:
        region = request.app[CONFIG].region
        return AuthError(
            503,
            "unexpected_failure",
            f"Region {region} serves a read-only replica of the database (a hot standby): sign-up, sign-in, "
            "refresh, logout and user changes must go to the primary region",
        )
    if (exc.sqlstate or "").startswith(UNAVAILABLE_SQLSTATE_CLASSES):
        return AuthError(503, "unexpected_failure", f"Database unavailable, retry: {exc}")
    log.error("auth: database error on %s %s: %s %s", request.method, request.path, exc.sqlstate, exc)
    return AuthError(500, "unexpected_failure", f"Database error: {exc}")


def setup(app: web.Application) -> None:
    add = app.router
    add.add_post("/auth/v1/signup", _gotrue(_signup))
    add.add_post("/auth/v1/token", _gotrue(_token))
    add.add_get("/auth/v1/user", _gotrue(_get_user_route))
    add.add_put("/auth/v1/user", _gotrue(_put_user))
    add.add_post("/auth/v1/logout", _gotrue(_logout))
    add.add_get("/auth/v1/settings", _gotrue(_settings))
    add.add_post("/auth/v1/admin/users", _gotrue(_admin_create))
    add.add_get("/auth/v1/admin/users", _gotrue(_admin_list))
    add.add_get("/auth/v1/admin/users/{user_id}", _gotrue(_admin_get))
    add.add_delete("/auth/v1/admin/users/{user_id}", _gotrue(_admin_delete))
