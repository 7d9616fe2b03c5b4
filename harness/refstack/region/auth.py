"""GoTrue at `/auth/v1` (docs/protocols.md §2): sign-up (with email and password, or anonymous), the password and
refresh grants, /user, logout and settings, and admin create/get. The other flows have their own modules, wired
here: auth_admin (update, list, delete, invite, generate_link), auth_otp (one-time passwords and links),
auth_mfa (TOTP factors), auth_unconfigured (SSO, OAuth and the rest this stand-in answers as a GoTrue that has
them turned off).

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

import uuid
from typing import Any

from aiohttp import web

from harness.refstack.region import auth_admin, auth_mfa, auth_otp, auth_store, auth_unconfigured
from harness.refstack.region.auth_common import (
    MAX_VARCHAR,
    caller,
    caller_user,
    gateway_key_error,
    gotrue,
    json_body,
    json_text,
    metadata_object,
    new_password,
    optional_string,
    parse_email,
    require_admin,
    session_response,
    subject,
    uuid_or_none,
)
from harness.refstack.region.auth_errors import AuthError
from harness.refstack.region.auth_input import read_json_object
from harness.refstack.region.auth_passwords import check_password, hash_password, random_password
from harness.refstack.region.state import CONFIG, DB

__all__ = ["gateway_key_error", "setup"]


# -- sign-up and grants ---------------------------------------------------------------------------------------------
def _requested_id(value: Any) -> str | None:
    """An admin create's optional `id` (GoTrue's adminUserCreate: any UUID but the nil one)."""
    if value is None or value == "":
        return None
    user_id = uuid_or_none(value)
    if user_id is None:
        raise AuthError(400, "validation_failed", "ID must conform to the uuid v4 format")
    if user_id == str(uuid.UUID(int=0)):
        raise AuthError(400, "validation_failed", "ID cannot be a nil uuid")
    return user_id


async def _create(request: web.Request, body: dict[str, Any], *, admin: bool) -> tuple[str, auth_store.Session | None]:
    """Validate, hash and store a new user; sign-up also starts its first session (autoconfirm). An admin create
    without a password gets a random one, as GoTrue's does."""
    if admin and not optional_string(body, "email") and not optional_string(body, "phone"):
        raise AuthError(400, "validation_failed", "Cannot create a user without either an email or phone")
    email = parse_email(body.get("email"))
    password = body.get("password")
    password = new_password(password) if not admin or password not in (None, "") else random_password()
    key = "user_metadata" if admin else "data"
    user_metadata = metadata_object(key, body.get(key))
    app_metadata = {"provider": "email", "providers": ["email"]}
    role = "authenticated"
    user_id = _requested_id(body.get("id")) if admin else None
    if admin:
        app_metadata |= metadata_object("app_metadata", body.get("app_metadata"))
        requested = body.get("role")
        if requested is not None:
            if not isinstance(requested, str) or not 0 < len(requested) <= MAX_VARCHAR:
                raise AuthError(400, "validation_failed", f"role must be a role name of 1 to {MAX_VARCHAR} characters")
            role = requested
        ban = auth_admin.ban_duration(body)
    password_hash = await hash_password(password, request.app[CONFIG].bcrypt_cost)
    try:
        user_json, session = await auth_store.create_user(
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
    if admin and ban is not None:
        user_json = await auth_admin.apply_ban(request, user_json, ban)
    return user_json, session


async def _signup(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    if not optional_string(body, "email") and not optional_string(body, "phone"):
        return await _signup_anonymously(request, body)
    _, session = await _create(request, body, admin=False)
    assert session is not None  # sign-up always starts a session
    return session_response(request, session)


async def _signup_anonymously(request: web.Request, body: dict[str, Any]) -> web.Response:
    """GoTrue's SignupAnonymously: a user with no email, phone or identity, signed in at once (amr `anonymous`)."""
    if not request.app[CONFIG].anonymous_sign_ins:
        raise AuthError(422, "anonymous_provider_disabled", "Anonymous sign-ins are disabled")
    _, session = await auth_store.create_user(
        request.app[DB],
        email=None,
        password_hash=None,
        role="authenticated",
        user_metadata=metadata_object("data", body.get("data")),
        app_metadata={},
        confirmed=False,
        start_session=True,
        method="anonymous",
    )
    assert session is not None
    return session_response(request, session)


async def _token(request: web.Request) -> web.Response:
    grant = request.query.get("grant_type", "")
    if grant not in ("password", "refresh_token"):
        raise AuthError(400, "invalid_credentials", "unsupported_grant_type")
    body = await read_json_object(request)
    if grant == "password":
        return session_response(request, await _password_grant(request, body))
    return session_response(request, await _refresh_grant(request, body))


async def _password_grant(request: web.Request, body: dict[str, Any]) -> auth_store.Session:
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        raise AuthError(400, "validation_failed", "Sign in with email and password: both must be strings")
    db = request.app[DB]
    login = await auth_store.find_login(db, email.strip().lower())
    if login is None or not await check_password(password, login.password_hash):
        raise AuthError(400, "invalid_credentials", "Invalid login credentials")
    if login.banned:
        raise AuthError(400, "user_banned", "User is banned")
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
    _, _, found = await caller_user(request)
    return json_text(request, found.user_json)


async def _put_user(request: web.Request) -> web.Response:
    _, user_id, found = await caller_user(request)
    user_json = found.user_json
    body = await read_json_object(request)
    patch = metadata_object("data", body["data"]) if "data" in body else None
    password_hash = None
    if "password" in body:
        password = new_password(body["password"])
        password_hash = await hash_password(password, request.app[CONFIG].bcrypt_cost)
    if patch is not None or password_hash is not None:
        updated = await auth_store.update_user(
            request.app[DB], user_id, metadata_patch=patch, password_hash=password_hash
        )
        if updated is None:
            raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
        user_json = updated
    return json_text(request, user_json)


async def _logout(request: web.Request) -> web.Response:
    claims = caller(request)
    scope = request.query.get("scope", "") or "global"
    if scope not in ("global", "local", "others"):
        raise AuthError(400, "validation_failed", f'Unsupported logout scope "{scope}"')
    user_id = subject(claims)
    session_id = uuid_or_none(claims.raw.get("session_id"))
    user_exists, session_alive = await auth_store.end_sessions(request.app[DB], user_id, session_id, scope)
    if not user_exists:
        raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
    if not session_alive:
        raise AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist")
    return web.Response(status=204)


# -- admin create and get -------------------------------------------------------------------------------------------
async def _admin_create(request: web.Request) -> web.Response:
    require_admin(request)
    user_json, _ = await _create(request, await read_json_object(request), admin=True)
    return json_text(request, user_json)


async def _admin_get(request: web.Request) -> web.Response:
    require_admin(request)
    user_json = await auth_store.get_user(request.app[DB], auth_admin.target(request))
    if user_json is None:
        raise AuthError(404, "user_not_found", "User not found")
    return json_text(request, user_json)


async def _settings(request: web.Request) -> web.Response:
    anonymous = request.app[CONFIG].anonymous_sign_ins
    return json_body(
        request,
        {
            "external": {"anonymous_users": anonymous, "email": True, "phone": False},
            "disable_signup": False,
            "mailer_autoconfirm": True,
            "phone_autoconfirm": False,
            "sms_provider": "",
            "saml_enabled": False,
            "passkeys_enabled": False,
        },
    )


def setup(app: web.Application) -> None:
    add = app.router
    add.add_post("/auth/v1/signup", gotrue(_signup))
    add.add_post("/auth/v1/token", gotrue(_token))
    add.add_get("/auth/v1/user", gotrue(_get_user_route))
    add.add_put("/auth/v1/user", gotrue(_put_user))
    add.add_post("/auth/v1/logout", gotrue(_logout))
    add.add_get("/auth/v1/settings", gotrue(_settings))
    add.add_post("/auth/v1/admin/users", gotrue(_admin_create))
    add.add_get("/auth/v1/admin/users/{user_id}", gotrue(_admin_get))
    for module in (auth_admin, auth_otp, auth_mfa, auth_unconfigured):
        module.setup(app)
