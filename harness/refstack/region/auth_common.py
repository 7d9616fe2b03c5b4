"""What every GoTrue route module shares: Kong's key-auth, the caller's token, input checks GoTrue makes everywhere,
the token response, and the wrapper that renders AuthError and database failures in GoTrue's error shape.

GoTrue parses bearer tokens with golang-jwt's defaults: `exp` is checked when present, never required, so a key
without `exp` (as Supabase's legacy keys may be) is accepted here as GoTrue accepts it.
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
from harness.refstack.region.auth_passwords import MAX_PASSWORD_BYTES, MIN_PASSWORD_LENGTH
from harness.refstack.region.state import CONFIG, DB, api_key, bearer_token
from harness.refstack.region.token_cache import verify_token

log = logging.getLogger(__name__)

MAX_VARCHAR = 255
"""auth.users' email and role, and refresh tokens, are varchar(255): longer values are refused before they reach
the database."""
READ_ONLY_SQLSTATE = "25006"
UNAVAILABLE_SQLSTATE_CLASSES = ("08", "57P")
"""Connection exceptions, and admin shutdown / crash shutdown / cannot connect now."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


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
def version_headers(request: web.Request) -> dict[str, str] | None:
    return {API_VERSION_HEADER: API_VERSION} if request.headers.get(API_VERSION_HEADER) else None


def json_text(request: web.Request, text: str, status: int = 200) -> web.Response:
    """A body already rendered as JSON (by Postgres), sent without decoding it."""
    return web.Response(text=text, status=status, content_type="application/json", headers=version_headers(request))


def json_body(request: web.Request, body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, headers=version_headers(request))


def issuer(request: web.Request) -> str:
    return base_url(request) + "/auth/v1"


def base_url(request: web.Request) -> str:
    """The project URL clients use (RegionConfig.public_url, else the address the request reached)."""
    return (request.app[CONFIG].public_url or f"{request.scheme}://{request.host}").rstrip("/")


def access_token_json(request: web.Request, session: auth_store.Session) -> str:
    """GoTrue's token response: a fresh access token for the session, its refresh token, and the user object."""
    config = request.app[CONFIG]
    access, expires_at = keys.mint_access_token(
        user_id=session.user_id,
        email=session.email,
        issuer=issuer(request),
        session_id=session.session_id,
        ttl_s=config.access_token_ttl_s,
        user_metadata=session.user_metadata,
        app_metadata=session.app_metadata,
        secret=config.jwt_secret,
        role=session.role,
        aal=session.aal,
        signed_in_at=session.signed_in_at,
        amr=session.amr,
        is_anonymous=session.is_anonymous,
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
    return f'{head[:-1]},"user":{session.user_json}}}'


def session_response(request: web.Request, session: auth_store.Session) -> web.Response:
    return json_text(request, access_token_json(request, session))


# -- input ----------------------------------------------------------------------------------------------------------
def parse_email(value: Any) -> str:
    """GoTrue's validateEmail: present, at most 255 characters, an address; lower-cased."""
    if not isinstance(value, str) or not value.strip():
        raise AuthError(400, "validation_failed", "An email address is required")
    email = value.strip().lower()
    if len(email) > MAX_VARCHAR:
        raise AuthError(400, "validation_failed", "An email address is too long")
    if not _EMAIL.match(email):
        raise AuthError(400, "validation_failed", "Unable to validate email address: invalid format")
    return email


def optional_string(body: dict[str, Any], name: str) -> str:
    """A string field Go would decode into a `string` ("" when absent or null); 400 bad_json for another type."""
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise AuthError(400, "bad_json", f"Could not parse request body as JSON: {name} must be a string")
    return value


def new_password(value: Any) -> str:
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


def metadata_object(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AuthError(400, "validation_failed", f"{name} must be a JSON object, got {json.dumps(value)[:80]}")
    return value


def uuid_or_none(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


# -- the caller -----------------------------------------------------------------------------------------------------
def caller(request: web.Request) -> Claims:
    token = bearer_token(request)
    if token is None:
        raise AuthError(401, "no_authorization", "This endpoint requires a valid Bearer token")
    try:
        return verify_token(token, request.app[CONFIG].jwt_secret, require_exp=False)
    except TokenError as exc:
        raise AuthError(403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {exc}") from None


def subject(claims: Claims) -> str:
    """The token's `sub` as GoTrue's maybeLoadUserOrSession checks it: present, and a UUID."""
    if not claims.sub:
        raise AuthError(403, "bad_jwt", "invalid claim: missing sub claim")
    user_id = uuid_or_none(claims.sub)
    if user_id is None:
        raise AuthError(400, "bad_jwt", "invalid claim: sub claim must be a UUID")
    return user_id


async def caller_user(request: web.Request) -> tuple[Claims, str, auth_store.TokenUser]:
    """GoTrue's requireAuthentication: the verified claims, the user's id and row; 403 when the user or the token's
    session is gone, or the user is banned."""
    claims = caller(request)
    user_id = subject(claims)
    session_id = uuid_or_none(claims.raw.get("session_id"))
    found = await auth_store.user_behind_token(request.app[DB], user_id, session_id)
    if found is None:
        raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
    if not found.session_alive:
        raise AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist")
    if found.banned:
        raise AuthError(403, "user_banned", "User is banned")
    return claims, user_id, found


def require_admin(request: web.Request) -> None:
    if not caller(request).is_service:
        raise AuthError(403, "not_admin", "User not allowed")


# -- the wrapper ----------------------------------------------------------------------------------------------------
def gotrue(handler: Handler, *, key_auth: bool = True) -> Handler:
    """Kong's key-auth, then the handler, with AuthError and database errors rendered as GoTrue errors. Without
    `key_auth`: one of the routes Supabase's Kong leaves open (the emailed /verify link, /authorize, /callback)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        rejected = gateway_key_error(request) if key_auth else None
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
