"""GoTrue's MFA with TOTP factors: enroll (`POST /factors`), challenge (`POST /factors/{id}/challenge`), verify
(`POST /factors/{id}/verify`: a new token pair at aal2, with `totp` first in `amr`) and unenroll
(`DELETE /factors/{id}`). Factors, challenges and each session's authentication methods are rows of
auth.mfa_factors, auth.mfa_challenges and auth.mfa_amr_claims; the user object lists its factors, so the clients'
get_authenticator_assurance_level sees `next_level` aal2 once one is verified.

As GoTrue: anonymous users may not enroll (403), a user with a verified factor needs an aal2 session to enroll
another or to unenroll a verified one, a challenge lasts 300 s and is redeemed once from the address that made it,
verifying ends the user's other aal1 sessions and drops the other unverified TOTP factors. Phone and WebAuthn
factors answer GoTrue's "MFA enroll is disabled" (as on a project with them off). Stand-in: `totp.qr_code` is an
SVG that carries the otpauth URI as text, not a scannable QR code (no QR encoder here); `uri` and `secret` are
what authenticator apps take.
"""

from __future__ import annotations

import time
import uuid
from html import escape
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from harness.model.keys import Claims
from harness.refstack.region import auth_store, auth_totp
from harness.refstack.region.auth_common import (
    base_url,
    caller_user,
    gotrue,
    json_body,
    optional_string,
    session_response,
    uuid_or_none,
)
from harness.refstack.region.auth_errors import AuthError
from harness.refstack.region.auth_input import read_json_object
from harness.refstack.region.state import DB

MAX_ENROLLED_FACTORS = 10
"""GoTrue's GOTRUE_MFA_MAX_ENROLLED_FACTORS default."""
MAX_VERIFIED_FACTORS = 10
CHALLENGE_EXPIRY_S = 300
"""GoTrue's GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION default."""

_FACTORS = """
select id::text, friendly_name, status::text, factor_type::text from auth.mfa_factors where user_id = $1::uuid"""
_ENROLL = """
insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, secret)
values ($1::uuid, $2::uuid, $3, 'totp', 'unverified', now(), now(), $4)"""
_FACTOR = """
select id::text, status::text, factor_type::text, secret from auth.mfa_factors
where id = $1::uuid and user_id = $2::uuid"""
_CHALLENGE = """
with c as (
  insert into auth.mfa_challenges (id, factor_id, created_at, ip_address) values ($1::uuid, $2::uuid, now(), $3::inet)
  returning created_at
),
f as (update auth.mfa_factors set last_challenged_at = now(), updated_at = now() where id = $2::uuid)
select extract(epoch from created_at)::float8 from c"""
_CHALLENGE_ROW = """
select extract(epoch from created_at)::float8 as created_at, verified_at is not null as verified, host(ip_address) as ip
from auth.mfa_challenges where id = $1::uuid and factor_id = $2::uuid"""
# Verification, in order (each statement numbers its own parameters; _verify passes them): the challenge is used,
# the factor verified, the session gains `totp` in its amr and aal2, the user's other aal1 sessions end, the other
# unverified TOTP factors go, and the session's refresh tokens are revoked (a new one is issued below).
_VERIFIED = [
    "update auth.mfa_challenges set verified_at = now() where id = $1::uuid",
    "update auth.mfa_factors set status = 'verified', updated_at = now() where id = $1::uuid",
    """insert into auth.mfa_amr_claims (id, session_id, created_at, updated_at, authentication_method)
       values (gen_random_uuid(), $1::uuid, now(), now(), 'totp')
       on conflict (session_id, authentication_method) do update set updated_at = now()""",
    "update auth.sessions set aal = 'aal2', factor_id = $2::uuid, updated_at = now() where id = $1::uuid",
    "delete from auth.sessions where user_id = $1::uuid and aal < 'aal2'",
    """delete from auth.mfa_factors where user_id = $1::uuid and status = 'unverified' and factor_type = 'totp'
       and id <> $2::uuid""",
    "update auth.refresh_tokens set revoked = true, updated_at = now() where session_id = $1::uuid",
]
_NEW_REFRESH = f"""
with u as (select usr from auth.users usr where usr.id = $3::uuid),
s as (select id, aal, created_at from auth.sessions where id = $4::uuid),
t as (
  insert into auth.refresh_tokens (instance_id, token, user_id, session_id, revoked, created_at, updated_at)
  select $1::uuid, $2::text, $3::text, s.id, false, now(), now() from s
)
select {auth_store.SESSION_COLUMNS}, harness_internal.gotrue_user(u.usr)::text as user_json from u, s"""
_UNENROLL = """
with gone as (delete from auth.mfa_factors where id = $1::uuid returning id),
claims as (
  delete from auth.mfa_amr_claims where authentication_method = 'totp'
    and session_id in (select id from auth.sessions where factor_id in (select id from gone))
)
update auth.sessions set aal = 'aal1', factor_id = null, updated_at = now() where factor_id in (select id from gone)"""


async def _signed_in(request: web.Request) -> tuple[Claims, str, str, str]:
    """GoTrue's requireAuthentication and requireNotAnonymous on /factors: claims, user id, session id, its aal."""
    claims, user_id, found = await caller_user(request)
    if claims.raw.get("is_anonymous") is True:
        raise AuthError(403, "no_authorization", "Anonymous user not allowed to perform these actions")
    session_id = uuid_or_none(claims.raw.get("session_id"))
    if session_id is None or found.aal is None:
        raise AuthError(500, "unexpected_failure", "A valid session and a registered user are required")
    return claims, user_id, session_id, found.aal


def _qr_svg(text: str) -> str:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="40" viewBox="0 0 400 40">'
        f'<text x="4" y="24" font-size="8">{escape(text)}</text></svg>'
    )


async def _enroll(request: web.Request) -> web.Response:
    claims, user_id, _, aal = await _signed_in(request)
    body = await read_json_object(request)
    factor_type = optional_string(body, "factor_type")
    if factor_type == "phone":
        raise AuthError(422, "mfa_phone_enroll_not_enabled", "MFA enroll is disabled for Phone")
    if factor_type == "webauthn":
        raise AuthError(422, "mfa_webauthn_enroll_not_enabled", "MFA enroll is disabled for WebAuthn")
    if factor_type != "totp":
        raise AuthError(400, "validation_failed", "factor_type needs to be totp, phone, or webauthn")
    name = optional_string(body, "friendly_name")
    issuer = optional_string(body, "issuer") or (urlsplit(base_url(request)).netloc)
    db = request.app[DB].admin
    factors = await db.fetch(_FACTORS, user_id)
    if name and any(f["friendly_name"] == name for f in factors):
        raise AuthError(
            422, "mfa_factor_name_conflict", f'A factor with the friendly name "{name}" for this user already exists'
        )
    verified = sum(1 for f in factors if f["status"] == "verified")
    if len(factors) >= MAX_ENROLLED_FACTORS or verified >= MAX_VERIFIED_FACTORS:
        raise AuthError(
            422, "too_many_enrolled_mfa_factors", "Maximum number of verified factors reached, unenroll to continue"
        )
    if verified and aal != "aal2":
        raise AuthError(403, "insufficient_aal", "AAL2 required to enroll a new factor")
    factor_id, secret = str(uuid.uuid4()), auth_totp.new_secret()
    await db.execute(_ENROLL, factor_id, user_id, name or None, secret)
    uri = auth_totp.uri(secret, issuer, str(claims.raw.get("email") or ""))
    totp = {"qr_code": _qr_svg(uri), "secret": secret, "uri": uri}
    return json_body(request, {"id": factor_id, "type": "totp", "friendly_name": name, "totp": totp})


async def _factor(request: web.Request, user_id: str) -> Any:
    """GoTrue's loadFactor: the user's factor of the path."""
    factor_id = uuid_or_none(request.match_info["factor_id"])
    if factor_id is None:
        raise AuthError(404, "validation_failed", "factor_id must be an UUID")
    factor = await request.app[DB].admin.fetchrow(_FACTOR, factor_id, user_id)
    if factor is None:
        raise AuthError(404, "mfa_factor_not_found", "Factor not found")
    return factor


async def _challenge(request: web.Request) -> web.Response:
    _, user_id, _, _ = await _signed_in(request)
    factor = await _factor(request, user_id)
    await read_json_object(request)
    challenge_id = str(uuid.uuid4())
    created = await request.app[DB].admin.fetchval(_CHALLENGE, challenge_id, factor["id"], request.remote or "0.0.0.0")
    return json_body(
        request, {"id": challenge_id, "type": factor["factor_type"], "expires_at": int(created) + CHALLENGE_EXPIRY_S}
    )


async def _verify(request: web.Request) -> web.Response:
    _, user_id, session_id, _ = await _signed_in(request)
    factor = await _factor(request, user_id)
    body = await read_json_object(request)
    code = optional_string(body, "code")
    if not code:
        raise AuthError(400, "validation_failed", "Code needs to be non-empty")
    challenge_id = uuid_or_none(body.get("challenge_id"))
    if challenge_id is None:
        raise AuthError(400, "bad_json", "Could not parse request body as JSON: challenge_id must be a UUID")
    db = request.app[DB].admin
    challenge = await db.fetchrow(_CHALLENGE_ROW, challenge_id, factor["id"])
    if challenge is None:
        raise AuthError(422, "mfa_factor_not_found", "MFA factor with the provided challenge ID not found")
    if challenge["verified"] or challenge["ip"] != (request.remote or "0.0.0.0"):
        raise AuthError(422, "mfa_ip_address_mismatch", "Challenge and verify IP addresses mismatch.")
    if time.time() > challenge["created_at"] + CHALLENGE_EXPIRY_S:
        await db.execute("delete from auth.mfa_challenges where id = $1::uuid", challenge_id)
        raise AuthError(
            422,
            "mfa_challenge_expired",
            f"MFA challenge {challenge_id} has expired, verify against another challenge or create a new challenge.",
        )
    if not auth_totp.valid(factor["secret"], code):
        raise AuthError(422, "mfa_verification_failed", "Invalid TOTP code entered")
    refresh = auth_store.new_refresh_token()
    async with db.acquire() as conn, conn.transaction():
        args: list[tuple[Any, ...]] = [
            (challenge_id,),
            (factor["id"],),
            (session_id,),
            (session_id, factor["id"]),
            (user_id,),
            (user_id, factor["id"]),
            (session_id,),
        ]
        for statement, values in zip(_VERIFIED, args, strict=True):
            await conn.execute(statement, *values)
        row = await conn.fetchrow(_NEW_REFRESH, auth_store.INSTANCE_ID, refresh, user_id, session_id)
    if row is None:
        raise AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist")
    return session_response(request, auth_store.Session.from_row(row, refresh))


async def _unenroll(request: web.Request) -> web.Response:
    _, user_id, _, aal = await _signed_in(request)
    factor = await _factor(request, user_id)
    if factor["status"] == "verified" and aal != "aal2":
        raise AuthError(422, "insufficient_aal", "AAL2 required to unenroll verified factor")
    await request.app[DB].admin.execute(_UNENROLL, factor["id"])
    return json_body(request, {"id": factor["id"]})


def setup(app: web.Application) -> None:
    add = app.router
    add.add_post("/auth/v1/factors", gotrue(_enroll))
    add.add_post("/auth/v1/factors/{factor_id}/challenge", gotrue(_challenge))
    add.add_post("/auth/v1/factors/{factor_id}/verify", gotrue(_verify))
    add.add_delete("/auth/v1/factors/{factor_id}", gotrue(_unenroll))
