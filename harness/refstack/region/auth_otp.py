"""GoTrue's one-time passwords and links: `POST /otp` (magic link / email OTP), `POST /recover`, `POST /resend`,
`GET /reauthenticate`, `POST /invite` and `POST /admin/generate_link` issue them; `POST /verify` (an OTP with its
email, or a token hash) and `GET /verify` (the link) redeem them for a session.

As in GoTrue, each OTP is stored only as its hash (sha224 of address + OTP) in the auth.users column of its kind
(confirmation_token: signup and invite; recovery_token: magiclink and recovery; email_change_token_current/_new;
reauthentication_token), with the time it was sent; it expires after a day (GOTRUE_MAILER_OTP_EXP) and is cleared
when redeemed. Mail is not sent: auth_outbox keeps what would have been (read it with
`GET /auth/v1/admin/test/otp?email=`). The project runs with GoTrue's autoconfirm on (as sign-up here does), so
an email change completes on one confirmation, and an OTP sign-in of a new address creates a confirmed user.
Not modelled: the PKCE flow of links (GET /verify always redirects with the tokens in the fragment, GoTrue's
implicit flow), the per-address mail frequency limit (GOTRUE_SMTP_MAX_FREQUENCY), phone OTPs (the phone provider
is off: GoTrue's "Unsupported phone provider").
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import asyncpg
from aiohttp import web

from harness.refstack.region import auth_outbox, auth_store
from harness.refstack.region.auth_common import (
    access_token_json,
    base_url,
    caller_user,
    gotrue,
    issuer,
    json_body,
    json_text,
    metadata_object,
    new_password,
    optional_string,
    parse_email,
    require_admin,
    session_response,
)
from harness.refstack.region.auth_errors import AuthError, error_response
from harness.refstack.region.auth_input import read_json_object
from harness.refstack.region.auth_outbox import OTP_EXPIRY_S, new_otp, token_hash
from harness.refstack.region.auth_passwords import hash_password, random_password
from harness.refstack.region.state import CONFIG, DB

EMAIL_TYPES = ("signup", "invite", "magiclink", "recovery", "email_change", "email")
_EXPIRED_LINK = "Email link is invalid or has expired"
_EXPIRED_TOKEN = "Token has expired or is invalid"
_DUPLICATE_EMAIL = "A user with this email address has already been registered"

_USER_COLUMNS = """
  id::text as user_id, email, email_change, email_confirmed_at is not null as confirmed,
  coalesce(banned_until > now(), false) as banned,
  confirmation_token, extract(epoch from confirmation_sent_at)::float8 as confirmation_sent_at,
  recovery_token, extract(epoch from recovery_sent_at)::float8 as recovery_sent_at,
  email_change_token_current, email_change_token_new,
  extract(epoch from email_change_sent_at)::float8 as email_change_sent_at"""
_BY_EMAIL = f"select {_USER_COLUMNS} from auth.users where lower(email) = $1 and is_sso_user = false"
_BY_EMAIL_OR_NEW_EMAIL = f"""
select {_USER_COLUMNS} from auth.users where (lower(email) = $1 or lower(email_change) = $1) and is_sso_user = false"""
_BY_TOKEN_HASH = f"""
select {_USER_COLUMNS} from auth.users
where $1 in (confirmation_token, recovery_token, email_change_token_current, email_change_token_new)"""
_SET_CONFIRMATION = """
update auth.users as usr set confirmation_token = $2, confirmation_sent_at = now(),
  invited_at = case when $3 then now() else invited_at end
where id = $1::uuid returning harness_internal.gotrue_user(usr)::text"""
_SET_RECOVERY = """
update auth.users as usr set recovery_token = $2, recovery_sent_at = now()
where id = $1::uuid returning harness_internal.gotrue_user(usr)::text"""
_SET_EMAIL_CHANGE = """
update auth.users as usr set email_change = $2, email_change_token_current = $3, email_change_token_new = $4,
  email_change_sent_at = now(), email_change_confirm_status = 0
where id = $1::uuid returning harness_internal.gotrue_user(usr)::text"""
_SET_REAUTHENTICATION = """
update auth.users set reauthentication_token = $2, reauthentication_sent_at = now() where id = $1::uuid"""
_MERGE_METADATA = """
update auth.users set raw_user_meta_data = coalesce(raw_user_meta_data, '{}'::jsonb) || $2::jsonb
where id = $1::uuid"""
_CONFIRM = """
with u as (
  update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()), confirmation_token = '',
    recovery_token = case when $2 then '' else recovery_token end
  where id = $1::uuid returning email
)
update auth.identities i set identity_data = i.identity_data || '{"email_verified": true}'::jsonb
from u where i.user_id = $1::uuid and i.provider = 'email' and lower(i.identity_data ->> 'email') = lower(u.email)"""
_CHANGE_EMAIL = """
with u as (
  update auth.users set email = email_change, email_change = '', email_change_token_current = '',
    email_change_token_new = '', email_change_confirm_status = 0, email_confirmed_at = now(), is_anonymous = false
  where id = $1::uuid and email_change <> '' returning email
),
updated as (
  update auth.identities i set identity_data = i.identity_data || jsonb_build_object('email', u.email,
                                                                                    'email_verified', true)
  from u where i.user_id = $1::uuid and i.provider = 'email'
  returning i.id
)
insert into auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at)
select $1::text, $1::uuid,
       jsonb_build_object('sub', $1::text, 'email', u.email, 'email_verified', true, 'phone_verified', false),
       'email', now(), now()
from u where not exists (select 1 from updated)"""


@dataclass(frozen=True)
class _Pending:
    """A user row with its outstanding tokens."""

    row: asyncpg.Record

    @property
    def user_id(self) -> str:
        return str(self.row["user_id"])

    def valid(self, token: str, kind: str) -> bool:
        """GoTrue's isOtpValid for the columns of `kind` (confirmation, recovery, email_change)."""
        if kind == "email_change":
            return token in (self.row["email_change_token_current"], self.row["email_change_token_new"]) and (
                _fresh(self.row["email_change_sent_at"])
            )
        return token == self.row[f"{kind}_token"] and _fresh(self.row[f"{kind}_sent_at"])


def _fresh(sent_at: float | None) -> bool:
    return sent_at is not None and time.time() <= sent_at + OTP_EXPIRY_S


def _column(kind: str) -> str:
    """The auth.users token column of a verification type."""
    if kind in ("signup", "invite"):
        return "confirmation"
    if kind in ("magiclink", "recovery"):
        return "recovery"
    return kind


def _redirect_to(request: web.Request, body: dict[str, Any] | None = None) -> str:
    """GoTrue's referrer: `redirect_to` (body, then query), else the site URL (here: the project URL)."""
    given = optional_string(body, "redirect_to") if body else ""
    return given or request.query.get("redirect_to", "") or base_url(request)


def _action_link(request: web.Request, hashed: str, kind: str, redirect_to: str) -> str:
    """GoTrue's GetEmailActionLink: `<issuer>/verify?token=…&type=…&redirect_to=…`."""
    redirect = quote(redirect_to, safe="") if any(c in redirect_to for c in "&=#") else redirect_to
    return f"{issuer(request)}/verify?token={quote(hashed, safe='')}&type={quote(kind, safe='')}&redirect_to={redirect}"


def _send(request: web.Request, email: str, kind: str, otp: str, hashed: str, redirect_to: str) -> None:
    link_type = "email_change" if kind.startswith("email_change") else kind
    link = _action_link(request, hashed, link_type, redirect_to) if kind != "reauthentication" else ""
    auth_outbox.mail(request, email, kind, otp, hashed, link, redirect_to)


async def _by_email(request: web.Request, email: str) -> asyncpg.Record | None:
    return await request.app[DB].admin.fetchrow(_BY_EMAIL, email)


async def _new_user(
    request: web.Request,
    email: str,
    *,
    confirmed: bool,
    data: dict[str, Any],
    password: str | None = None,
    confirmation_token: str | None = None,
    invited: bool = False,
) -> str:
    password_hash = await hash_password(password, request.app[CONFIG].bcrypt_cost) if password else None
    try:
        user_json, _ = await auth_store.create_user(
            request.app[DB],
            email=email,
            password_hash=password_hash,
            role="authenticated",
            user_metadata=data,
            app_metadata={"provider": "email", "providers": ["email"]},
            confirmed=confirmed,
            start_session=False,
            confirmation_token=confirmation_token,
            invited=invited,
        )
    except auth_store.EmailTaken:  # created meanwhile by another request
        raise AuthError(422, "email_exists", _DUPLICATE_EMAIL) from None
    return user_json


# -- issuing --------------------------------------------------------------------------------------------------------
async def _otp(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    email, phone = optional_string(body, "email"), optional_string(body, "phone")
    if email and phone:
        raise AuthError(400, "validation_failed", "Only an email address or phone number should be provided")
    if email and optional_string(body, "channel"):
        raise AuthError(400, "validation_failed", "Channel should only be specified with Phone OTP")
    create_user = body.get("create_user", True) is not False
    if phone:
        raise AuthError(400, "phone_provider_disabled", "Unsupported phone provider")
    if not email:
        raise AuthError(400, "validation_failed", "One of email or phone must be set")
    email = parse_email(email)
    data = metadata_object("data", body.get("data"))
    user = await _by_email(request, email)
    if user is None and not create_user:
        raise AuthError(422, "otp_disabled", "Signups not allowed for otp")
    if user is None:  # autoconfirm: the new user is confirmed, then gets its magic link
        await _new_user(request, email, confirmed=True, data=data)
        user = await _by_email(request, email)
        assert user is not None
    elif not user["confirmed"]:
        await request.app[DB].admin.execute(_CONFIRM, user["user_id"], False)
    await _send_recovery(request, user["user_id"], email, "magiclink", _redirect_to(request, body))
    return json_body(request, {})


async def _send_recovery(request: web.Request, user_id: str, email: str, kind: str, redirect_to: str) -> str:
    otp = new_otp()
    hashed = token_hash(email, otp)
    user_json = await request.app[DB].admin.fetchval(_SET_RECOVERY, user_id, hashed)
    _send(request, email, kind, otp, hashed, redirect_to)
    return str(user_json)


async def _send_confirmation(
    request: web.Request, user_id: str, email: str, kind: str, redirect_to: str, *, invited: bool = False
) -> str:
    otp = new_otp()
    hashed = token_hash(email, otp)
    user_json = await request.app[DB].admin.fetchval(_SET_CONFIRMATION, user_id, hashed, invited)
    _send(request, email, kind, otp, hashed, redirect_to)
    return str(user_json)


async def _recover(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    if not optional_string(body, "email"):
        raise AuthError(400, "validation_failed", "Password recovery requires an email")
    email = parse_email(body["email"])
    user = await _by_email(request, email)
    if user is not None:
        await _send_recovery(request, user["user_id"], email, "recovery", _redirect_to(request, body))
    return json_body(request, {})


async def _resend(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    kind = optional_string(body, "type")
    email, phone = optional_string(body, "email"), optional_string(body, "phone")
    if kind not in ("signup", "email_change", "sms", "phone_change"):
        raise AuthError(400, "validation_failed", "Missing one of these types: signup, email_change, sms, phone_change")
    if not email and kind == "signup":
        raise AuthError(400, "validation_failed", "Type provided requires an email address")
    if not phone and kind == "sms":
        raise AuthError(400, "validation_failed", "Type provided requires a phone number")
    if email and phone:
        raise AuthError(400, "validation_failed", "Only an email address or phone number should be provided.")
    if phone:
        raise AuthError(400, "phone_provider_disabled", "Phone logins are disabled")
    if not email:
        raise AuthError(400, "validation_failed", "Missing email address or phone number")
    email = parse_email(email)
    user = await _by_email(request, email)
    redirect_to = _redirect_to(request, body)
    if user is None or kind in ("sms", "phone_change"):
        return json_body(request, {})
    if kind == "signup" and not user["confirmed"]:
        await _send_confirmation(request, user["user_id"], email, "signup", redirect_to)
    elif kind == "email_change" and user["email_change"]:
        await _send_email_change(request, user["user_id"], email, user["email_change"], redirect_to)
    return json_body(request, {})


async def _send_email_change(
    request: web.Request, user_id: str, email: str, new_email: str, redirect_to: str, only: str | None = None
) -> tuple[str, str, str]:
    """Tokens for both addresses (secure email change), or `only` one of email_change_current/_new (generate_link);
    returns the OTP, the current address's hash and the user object."""
    otp = new_otp()
    current, new = token_hash(email, otp), token_hash(new_email, otp)
    user_json = await request.app[DB].admin.fetchval(
        _SET_EMAIL_CHANGE,
        user_id,
        new_email,
        current if only in (None, "email_change_current") else "",
        new if only in (None, "email_change_new") else "",
    )
    if only is None:
        _send(request, email, "email_change_current", otp, current, redirect_to)
        _send(request, new_email, "email_change_new", otp, new, redirect_to)
    return otp, current, str(user_json)


async def _reauthenticate(request: web.Request) -> web.Response:
    _, user_id, found = await caller_user(request)
    if not found.email:
        raise AuthError(
            400, "validation_failed", "Reauthentication requires the user to have an email or a phone number"
        )
    if not found.confirmed:
        raise AuthError(422, "email_not_confirmed", "Please verify your email first.")
    otp = new_otp()
    hashed = token_hash(found.email, otp)
    await request.app[DB].admin.execute(_SET_REAUTHENTICATION, user_id, hashed)
    _send(request, found.email, "reauthentication", otp, hashed, "")
    return json_body(request, {})


async def _invite(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_json_object(request)
    email = parse_email(body.get("email"))
    data = metadata_object("data", body.get("data"))
    user = await _by_email(request, email)
    if user is not None and user["confirmed"]:
        raise AuthError(422, "email_exists", _DUPLICATE_EMAIL)
    if user is None:
        await _new_user(request, email, confirmed=False, data=data)
        user = await _by_email(request, email)
        assert user is not None
    user_json = await _send_confirmation(
        request, user["user_id"], email, "invite", _redirect_to(request, body), invited=True
    )
    return json_text(request, user_json)


async def _generate_link(request: web.Request) -> web.Response:
    """GoTrue's adminGenerateLink: the link and OTP a custom mailer would send, with the user; nothing is mailed."""
    require_admin(request)
    body = await read_json_object(request)
    kind = optional_string(body, "type")
    email = parse_email(body.get("email"))
    redirect_to = _redirect_to(request, body)
    data = metadata_object("data", body.get("data"))
    user = await _by_email(request, email)
    password = optional_string(body, "password")
    if user is None and kind == "magiclink":
        kind, password = "signup", random_password()
    if user is None and kind in ("recovery", "email_change_current", "email_change_new"):
        raise AuthError(404, "user_not_found", "User with this email not found")
    otp = new_otp()
    hashed = token_hash(email, otp)
    db = request.app[DB].admin
    if kind in ("magiclink", "recovery"):
        assert user is not None
        user_json = await db.fetchval(_SET_RECOVERY, user["user_id"], hashed)
    elif kind in ("signup", "invite"):
        if user is not None and user["confirmed"]:
            raise AuthError(422, "email_exists", _DUPLICATE_EMAIL)
        if user is None:
            if kind == "signup":
                if not password:
                    raise AuthError(400, "validation_failed", "Signup requires a valid password")
                new_password(password)
            await _new_user(request, email, confirmed=False, data=data, password=password or None)
            user = await _by_email(request, email)
            assert user is not None
        elif kind == "signup" and data:
            await db.execute(_MERGE_METADATA, user["user_id"], json.dumps(data))
        user_json = await db.fetchval(_SET_CONFIRMATION, user["user_id"], hashed, kind == "invite")
    elif kind in ("email_change_current", "email_change_new"):
        assert user is not None
        new_email = parse_email(body.get("new_email"))
        owner = await _by_email(request, new_email)
        if owner is not None and owner["user_id"] != user["user_id"]:
            raise AuthError(422, "email_exists", _DUPLICATE_EMAIL)
        current_new = token_hash(new_email, otp)
        user_json = await db.fetchval(
            _SET_EMAIL_CHANGE,
            user["user_id"],
            new_email,
            hashed if kind == "email_change_current" else "",
            current_new if kind == "email_change_new" else "",
        )
        link_hash = hashed if kind == "email_change_current" else current_new
        return _link_response(request, str(user_json), kind, otp, hashed, link_hash, redirect_to)
    else:
        raise AuthError(400, "validation_failed", f"Invalid email action link type requested: {kind}")
    return _link_response(request, str(user_json), kind, otp, hashed, hashed, redirect_to)


def _link_response(
    request: web.Request, user_json: str, kind: str, otp: str, hashed: str, link_hash: str, redirect_to: str
) -> web.Response:
    link_type = "email_change" if kind.startswith("email_change") else kind
    extra = json.dumps(
        {
            "action_link": _action_link(request, link_hash, link_type, redirect_to),
            "email_otp": otp,
            "hashed_token": hashed,
            "verification_type": kind,
            "redirect_to": redirect_to,
        }
    )
    return json_text(request, f"{user_json[:-1]},{extra[1:]}")


# -- redeeming ------------------------------------------------------------------------------------------------------
async def _redeem(request: web.Request, kind: str, token_hash_: str, email: str | None) -> tuple[str, str]:
    """Find the user the token was issued to, check it, apply its effect; returns (user id, type applied)."""
    db = request.app[DB].admin
    if email is None:
        row = await db.fetchrow(_BY_TOKEN_HASH, token_hash_)
        refusal = _EXPIRED_LINK
    elif kind == "email_change":
        rows = await db.fetch(_BY_EMAIL_OR_NEW_EMAIL, email)
        row = next((r for r in rows if _Pending(r).valid(token_hash_, "email_change")), rows[0] if rows else None)
        refusal = _EXPIRED_TOKEN
    else:
        row = await db.fetchrow(_BY_EMAIL, email)
        refusal = _EXPIRED_TOKEN
    if row is None:
        raise AuthError(403, "otp_expired", refusal)
    if row["banned"]:
        raise AuthError(403, "user_banned", "User is banned")
    pending = _Pending(row)
    if kind == "email":  # an email OTP redeems a confirmation or a magic link, whichever it was
        kind = "signup" if pending.valid(token_hash_, "confirmation") else "magiclink"
    if not pending.valid(token_hash_, _column(kind)):
        raise AuthError(403, "otp_expired", refusal)
    if kind == "email_change":
        await db.execute(_CHANGE_EMAIL, pending.user_id)
    else:
        await db.execute(_CONFIRM, pending.user_id, kind in ("magiclink", "recovery"))
    return pending.user_id, kind


async def _verify_post(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    kind, token = optional_string(body, "type"), optional_string(body, "token")
    hashed, email, phone = (optional_string(body, n) for n in ("token_hash", "email", "phone"))
    if not kind:
        raise AuthError(400, "validation_failed", "Verify requires a verification type")
    if bool(token) == bool(hashed):
        raise AuthError(400, "validation_failed", "Verify requires either a token or a token hash")
    if token and phone and not email:
        raise AuthError(403, "otp_expired", _EXPIRED_TOKEN)  # the phone provider is off: no phone has an OTP
    if token and not (email and not phone):
        raise AuthError(400, "validation_failed", "Only an email address or phone number should be provided on verify")
    if hashed and (email or phone or optional_string(body, "redirect_to")):
        raise AuthError(400, "validation_failed", "Only the token_hash and type should be provided")
    if kind not in EMAIL_TYPES:
        if kind in ("sms", "phone_change"):
            raise AuthError(403, "otp_expired", _EXPIRED_TOKEN)
        raise AuthError(400, "validation_failed", "Unsupported verification type")
    if token:
        try:
            email = parse_email(email)
        except AuthError:
            raise AuthError(422, "validation_failed", "Invalid email format") from None
        hashed = token_hash(email, token)
    user_id, _ = await _redeem(request, kind, hashed, email if token else None)
    session = await auth_store.sign_in(request.app[DB], user_id, "otp")
    if session is None:
        raise AuthError(403, "otp_expired", _EXPIRED_TOKEN)
    return session_response(request, session)


async def _verify_get(request: web.Request) -> web.Response:
    """The emailed link: 303 to `redirect_to` with the session in the fragment, or GoTrue's error fragment."""
    token, kind = request.query.get("token", ""), request.query.get("type", "")
    if not kind:
        raise AuthError(400, "validation_failed", "Verify requires a verification type")
    if not token:
        raise AuthError(400, "validation_failed", "Verify requires a token or a token hash")
    redirect_to = request.query.get("redirect_to") or base_url(request)
    try:
        if kind not in EMAIL_TYPES:
            raise AuthError(400, "validation_failed", "Unsupported verification type")
        user_id, _ = await _redeem(request, kind, token, None)
        session = await auth_store.sign_in(request.app[DB], user_id, "otp")
        if session is None:
            raise AuthError(403, "otp_expired", _EXPIRED_LINK)
    except AuthError as exc:
        fragment = {"error": {400: "invalid_request", 403: "access_denied"}.get(exc.status, "server_error")}
        fragment |= {"error_code": exc.code, "error_description": exc.message, "sb": ""}
        raise web.HTTPSeeOther(f"{redirect_to}#{urlencode(sorted(fragment.items()))}") from None
    tokens = json.loads(access_token_json(request, session))
    fragment = {k: str(tokens[k]) for k in ("access_token", "token_type", "expires_in", "expires_at", "refresh_token")}
    fragment |= {"type": kind, "sb": ""}
    raise web.HTTPSeeOther(f"{redirect_to}#{urlencode(sorted(fragment.items()))}")


# -- the reference stack's mailbox ----------------------------------------------------------------------------------
async def _last_mail(request: web.Request) -> web.Response:
    """Test aid, not GoTrue's: the last OTP or link issued to `?email=` (service role only)."""
    require_admin(request)
    email = parse_email(request.query.get("email"))
    mail = request.app[auth_outbox.OUTBOX].last(email)
    if mail is None:
        return error_response(request, AuthError(404, "otp_not_found", f"No one-time password was sent to {email}"))
    return json_body(request, mail)


def setup(app: web.Application) -> None:
    auth_outbox.setup(app)
    add = app.router
    add.add_post("/auth/v1/otp", gotrue(_otp))
    add.add_post("/auth/v1/magiclink", gotrue(_otp))
    add.add_post("/auth/v1/recover", gotrue(_recover))
    add.add_post("/auth/v1/resend", gotrue(_resend))
    add.add_get("/auth/v1/reauthenticate", gotrue(_reauthenticate))
    add.add_post("/auth/v1/invite", gotrue(_invite))
    add.add_post("/auth/v1/admin/generate_link", gotrue(_generate_link))
    add.add_post("/auth/v1/verify", gotrue(_verify_post))
    add.add_get("/auth/v1/verify", gotrue(_verify_get, key_auth=False))
    add.add_get("/auth/v1/admin/test/otp", gotrue(_last_mail))
