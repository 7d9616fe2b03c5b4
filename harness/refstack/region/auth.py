"""GoTrue at `/auth/v1` (docs/protocols.md §2): sign-up with autoconfirm, password and refresh grants, /user, logout,
and the admin user API. Also the two checks every route module shares: Kong's key-auth and token verification.

Password hashing is real but fast: scrypt with n=2**10, r=8, p=1 (about 1–2 ms and 1 MiB per hash here), because
sign-in runs under load. It still salts and stretches, so stored hashes are not trivially reversible; it is not the
bcrypt cost GoTrue uses (≈ 60 ms), which would make the reference stack, not the app, the bottleneck of a test.

Sign-up (and admin create) also inserts the user's `profiles` row, as the migration's `on_auth_user_created`
trigger does on a real project: `display_name` and `username` come from the sign-up `data` when given.

Refresh tokens rotate: a used one is revoked, and presenting it again answers `refresh_token_already_used`
(GoTrue's 10 s reuse interval is not modelled). On a read replica, auth rows are written locally without entering
the change log (see `Database.insert(log=False)`), so sign-in works in both regions and replication stays intact.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from harness.model import keys
from harness.model.keys import Claims, TokenError
from harness.refstack.region.config import RegionConfig
from harness.refstack.region.db import Database, DbError, Filter
from harness.refstack.region.state import CONFIG, DB, api_key, bearer_token

API_VERSION_HEADER = "X-Supabase-Api-Version"
API_VERSION = "2024-01-01"
MIN_PASSWORD_LENGTH = 6
"""GoTrue's default minimum password length (GOTRUE_PASSWORD_MIN_LENGTH)."""
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**10, 8, 1
"""scrypt cost: small on purpose (see the module docstring)."""
TOKEN_CACHE_SIZE = 20_000
"""Verified tokens kept in memory, so a hot path verifies each distinct token's signature once."""

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


_token_cache: OrderedDict[tuple[str, str], Claims] = OrderedDict()


def verify_token(token: str, secret: str) -> Claims:
    """`keys.verify` with an LRU in front, keyed by (secret, token) and honoured only until the token's `exp`."""
    cache_key = (secret, token)
    claims = _token_cache.get(cache_key)
    if claims is not None:
        if float(claims.raw.get("exp", 0)) > time.time():
            return claims
        del _token_cache[cache_key]
        raise TokenError("expired", "JWT expired")
    claims = keys.verify(token, secret)
    _token_cache[cache_key] = claims
    if len(_token_cache) > TOKEN_CACHE_SIZE:
        _token_cache.popitem(last=False)
    return claims


# -- error rendering --------------------------------------------------------------------------------------------------
class AuthError(Exception):
    """A GoTrue error: HTTP status, error code and message (§2.4)."""

    def __init__(self, status: int, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}


def _error_response(request: web.Request, error: AuthError) -> web.Response:
    headers = {"x-sb-error-code": error.code}
    if request.headers.get(API_VERSION_HEADER):
        headers[API_VERSION_HEADER] = API_VERSION
        body: dict[str, Any] = {"code": error.code, "message": error.message, **error.extra}
    else:
        body = {"code": error.status, "error_code": error.code, "msg": error.message, **error.extra}
    return web.json_response(body, status=error.status, headers=headers)


def _json(request: web.Request, body: Any, status: int = 200) -> web.Response:
    headers = {API_VERSION_HEADER: API_VERSION} if request.headers.get(API_VERSION_HEADER) else None
    return web.json_response(body, status=status, headers=headers)


# -- passwords and users ------------------------------------------------------------------------------------------
def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=len(digest) // 2
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual.hex(), digest)


def user_json(row: dict[str, Any]) -> dict[str, Any]:
    """A stored auth user as GoTrue's User object (the fields supabase_auth validates, §2.2)."""
    created = row["created_at"]
    return {
        "id": row["id"],
        "aud": row["aud"],
        "role": row["role"],
        "email": row["email"],
        "email_confirmed_at": created,
        "phone": "",
        "confirmed_at": created,
        "last_sign_in_at": row.get("last_sign_in_at"),
        "app_metadata": row.get("app_metadata") or {"provider": "email", "providers": ["email"]},
        "user_metadata": row.get("user_metadata") or {},
        "identities": [],
        "created_at": created,
        "updated_at": row["updated_at"],
        "is_anonymous": False,
    }


def _writes_logged(db: Database) -> bool:
    """Auth writes enter the change log on a primary (so they replicate) and stay local on a replica."""
    return not db.read_only


def create_user(
    db: Database,
    *,
    email: Any,
    password: Any,
    user_metadata: Any = None,
    app_metadata: Any = None,
    role: Any = None,
    duplicate_code: str = "user_already_exists",
) -> dict[str, Any]:
    """Validate and store a user plus its profile row; AuthError for bad input or a taken email."""
    if not isinstance(email, str) or not email:
        raise AuthError(400, "validation_failed", "To signup, please provide your email")
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise AuthError(400, "validation_failed", "Unable to validate email address: invalid format")
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(
            422,
            "weak_password",
            f"Password should be at least {MIN_PASSWORD_LENGTH} characters.",
            {"weak_password": {"reasons": ["length"]}},
        )
    for name, value in (("data", user_metadata), ("app_metadata", app_metadata)):
        if value is not None and not isinstance(value, dict):
            raise AuthError(400, "validation_failed", f"{name} must be a JSON object, got {json.dumps(value)[:80]}")
    if db.get("auth_users", email=email) is not None:
        if duplicate_code == "email_exists":
            raise AuthError(422, "email_exists", "A user with this email address has already been registered")
        raise AuthError(422, "user_already_exists", "User already registered")
    meta = dict(user_metadata or {})
    row = {
        "email": email,
        "password_hash": hash_password(password),
        "aud": "authenticated",
        "role": role if isinstance(role, str) and role else "authenticated",
        "user_metadata": meta,
        "app_metadata": {"provider": "email", "providers": ["email"], **(app_metadata or {})},
    }
    logged = _writes_logged(db)
    try:
        (user,) = db.insert("auth_users", [row], internal=True, log=logged)
    except DbError as exc:
        raise AuthError(422, duplicate_code, "User already registered") from exc
    _create_profile(db, user, meta, logged)
    return user


def _create_profile(db: Database, user: dict[str, Any], meta: dict[str, Any], logged: bool) -> None:
    """The migration's `handle_new_user` trigger: one profiles row per user, username only if still free."""
    username = meta.get("username")
    if not isinstance(username, str) or db.get("profiles", username=username) is not None:
        username = None
    display = meta.get("display_name") or meta.get("full_name") or user["email"].split("@", 1)[0]
    profile = {
        "id": user["id"],
        "username": username,
        "display_name": display if isinstance(display, str) else None,
        "avatar_url": meta.get("avatar_url") if isinstance(meta.get("avatar_url"), str) else None,
    }
    db.insert("profiles", [profile], internal=True, log=logged, on_conflict="ignore")


# -- sessions -------------------------------------------------------------------------------------------------------
def _issuer(request: web.Request, config: RegionConfig) -> str:
    base = config.public_url or f"{request.scheme}://{request.host}"
    return base.rstrip("/") + "/auth/v1"


def _session(request: web.Request, user: dict[str, Any], session_id: str) -> dict[str, Any]:
    config = request.app[CONFIG]
    db = request.app[DB]
    access, expires_at = keys.mint_access_token(
        user_id=user["id"],
        email=user["email"],
        issuer=_issuer(request, config),
        session_id=session_id,
        ttl_s=config.access_token_ttl_s,
        user_metadata=user.get("user_metadata") or {},
        app_metadata=user.get("app_metadata") or None,
        secret=config.jwt_secret,
    )
    refresh = secrets.token_urlsafe(24)
    db.insert(
        "auth_refresh_tokens",
        [{"token": refresh, "user_id": user["id"], "session_id": session_id}],
        internal=True,
        log=_writes_logged(db),
    )
    return {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": config.access_token_ttl_s,
        "expires_at": expires_at,
        "refresh_token": refresh,
        "user": user_json(user),
    }


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json() if request.can_read_body else {}
    except (ValueError, UnicodeDecodeError):
        raise AuthError(400, "bad_json", "Could not parse request body as JSON") from None
    if not isinstance(body, dict):
        raise AuthError(400, "bad_json", "Request body must be a JSON object")
    return body


def _caller(request: web.Request) -> Claims:
    token = bearer_token(request)
    if token is None:
        raise AuthError(401, "no_authorization", "This endpoint requires a Bearer token")
    try:
        return verify_token(token, request.app[CONFIG].jwt_secret)
    except TokenError as exc:
        raise AuthError(403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {exc}") from None


def _caller_user(request: web.Request) -> tuple[Claims, dict[str, Any]]:
    claims = _caller(request)
    user = _get_user(request.app[DB], claims.sub) if claims.sub else None
    if user is None:
        raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
    return claims, user


def _get_user(db: Database, user_id: str) -> dict[str, Any] | None:
    try:
        return db.get("auth_users", id=user_id)
    except DbError:
        return None  # not a UUID


def _require_admin(request: web.Request) -> None:
    if not _caller(request).is_service:
        raise AuthError(403, "not_admin", "User not allowed")


# -- handlers -----------------------------------------------------------------------------------------------------
async def _signup(request: web.Request) -> web.Response:
    body = await _body(request)
    db = request.app[DB]
    user = create_user(db, email=body.get("email"), password=body.get("password"), user_metadata=body.get("data"))
    return _json(request, _session(request, user, str(uuid.uuid4())))


async def _token(request: web.Request) -> web.Response:
    grant = request.query.get("grant_type", "")
    body = await _body(request)
    if grant == "password":
        return _json(request, _password_grant(request, body))
    if grant == "refresh_token":
        return _json(request, _refresh_grant(request, body))
    raise AuthError(400, "invalid_credentials", "unsupported_grant_type")


def _password_grant(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        raise AuthError(400, "validation_failed", "Sign in with email and password: both must be strings")
    db = request.app[DB]
    user = db.get("auth_users", email=email.strip().lower())
    if user is None or not check_password(password, user["password_hash"]):
        raise AuthError(400, "invalid_credentials", "Invalid login credentials")
    return _session(request, user, str(uuid.uuid4()))


def _refresh_grant(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    token = body.get("refresh_token")
    if not isinstance(token, str) or not token:
        raise AuthError(400, "validation_failed", "refresh_token is required")
    db = request.app[DB]
    stored = db.get("auth_refresh_tokens", token=token)
    if stored is None:
        raise AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
    if stored["revoked"]:
        raise AuthError(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used")
    user = _get_user(db, stored["user_id"])
    if user is None:
        raise AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
    db.update(
        "auth_refresh_tokens",
        {"revoked": True},
        filters=[Filter("token", "eq", token)],
        internal=True,
        log=_writes_logged(db),
    )
    return _session(request, user, stored["session_id"])


async def _get_user_route(request: web.Request) -> web.Response:
    _, user = _caller_user(request)
    return _json(request, user_json(user))


async def _put_user(request: web.Request) -> web.Response:
    _, user = _caller_user(request)
    body = await _body(request)
    changes: dict[str, Any] = {}
    if "data" in body:
        if not isinstance(body["data"], dict):
            raise AuthError(400, "validation_failed", "data must be a JSON object")
        changes["user_metadata"] = {**(user.get("user_metadata") or {}), **body["data"]}
    if "password" in body:
        password = body["password"]
        if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
            raise AuthError(
                422,
                "weak_password",
                f"Password should be at least {MIN_PASSWORD_LENGTH} characters.",
                {"weak_password": {"reasons": ["length"]}},
            )
        changes["password_hash"] = hash_password(password)
    db = request.app[DB]
    if changes:
        (user,) = db.update(
            "auth_users", changes, filters=[Filter("id", "eq", user["id"])], internal=True, log=_writes_logged(db)
        )
    return _json(request, user_json(user))


async def _logout(request: web.Request) -> web.Response:
    claims, user = _caller_user(request)
    scope = request.query.get("scope", "global")
    filters = [Filter("user_id", "eq", user["id"])]
    session = claims.raw.get("session_id")
    if scope == "local" and isinstance(session, str):
        filters.append(Filter("session_id", "eq", session))
    elif scope == "others" and isinstance(session, str):
        filters.append(Filter("session_id", "neq", session))
    db = request.app[DB]
    db.update("auth_refresh_tokens", {"revoked": True}, filters=filters, internal=True, log=_writes_logged(db))
    return web.Response(status=204)


async def _admin_create(request: web.Request) -> web.Response:
    _require_admin(request)
    body = await _body(request)
    user = create_user(
        request.app[DB],
        email=body.get("email"),
        password=body.get("password"),
        user_metadata=body.get("user_metadata"),
        app_metadata=body.get("app_metadata"),
        role=body.get("role"),
        duplicate_code="email_exists",
    )
    return _json(request, user_json(user))


async def _admin_list(request: web.Request) -> web.Response:
    _require_admin(request)
    try:
        page = max(1, int(request.query.get("page", "1")))
        per_page = min(1000, max(1, int(request.query.get("per_page", "50"))))
    except ValueError:
        raise AuthError(
            400, "validation_failed", "page and per_page must be integers, e.g. page=1&per_page=50"
        ) from None
    rows, total = request.app[DB].select(
        "auth_users", limit=per_page, offset=(page - 1) * per_page, count=True, order=()
    )
    response = _json(request, {"users": [user_json(r) for r in rows], "aud": "authenticated"})
    response.headers["X-Total-Count"] = str(total)
    return response


def _admin_target(request: web.Request) -> dict[str, Any]:
    user = _get_user(request.app[DB], request.match_info["user_id"])
    if user is None:
        raise AuthError(404, "user_not_found", "User not found")
    return user


async def _admin_get(request: web.Request) -> web.Response:
    _require_admin(request)
    return _json(request, user_json(_admin_target(request)))


async def _admin_delete(request: web.Request) -> web.Response:
    _require_admin(request)
    user = _admin_target(request)
    db = request.app[DB]
    logged = _writes_logged(db)
    db.delete("auth_refresh_tokens", filters=[Filter("user_id", "eq", user["id"])], internal=True, log=logged)
    db.delete("profiles", filters=[Filter("id", "eq", user["id"])], internal=True, log=logged)
    db.delete("auth_users", filters=[Filter("id", "eq", user["id"])], internal=True, log=logged)
    return _json(request, {})


async def _settings(request: web.Request) -> web.Response:
    return _json(
        request,
        {"external": {"email": True, "phone": False}, "disable_signup": False, "mailer_autoconfirm": True},
    )


def _gotrue(handler: Handler) -> Handler:
    """Kong's key-auth, then the handler, with AuthError and DbError rendered as GoTrue errors."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        rejected = gateway_key_error(request)
        if rejected is not None:
            return rejected
        try:
            return await handler(request)
        except AuthError as exc:
            return _error_response(request, exc)
        except DbError as exc:
            if exc.code == "25006":
                return _error_response(request, AuthError(503, "unexpected_failure", "This region is read-only"))
            return _error_response(request, AuthError(400, "validation_failed", exc.message))

    return wrapped


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
