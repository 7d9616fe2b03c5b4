"""GoTrue's flows beyond password sign-in, through supabase-py's auth client (supabase_auth 2.34.1) against one
region (anonymous sign-ins on): admin update/list/delete, one-time passwords and links, invite, recovery,
reauthentication, anonymous sign-in, TOTP MFA, logout scopes; raw HTTP where the client has no call.

The OTPs that would have been mailed are read back through the reference stack's
`GET /auth/v1/admin/test/otp?email=` (service role), as docs/reference-stack.md documents."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from supabase_auth.errors import AuthApiError

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region import auth_totp
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from tests.refstack.region.conftest import PASSWORD, SERVICE_HEADERS, TEST_BCRYPT_COST, run_sql

LEGACY = {"apikey": keys.ANON_KEY}


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    config = RegionConfig(
        data_dir=tmp_path_factory.mktemp("region"), bcrypt_cost=TEST_BCRYPT_COST, anonymous_sign_ins=True
    )
    with background(lambda: build_app(config)) as server:
        yield server


async def _client(url: str, key: str = keys.ANON_KEY) -> AsyncClient:
    return await acreate_client(url, key, options=AsyncClientOptions(auto_refresh_token=False, persist_session=False))


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _last_mail(url: str, email: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/auth/v1/admin/test/otp", params={"email": email}, headers=SERVICE_HEADERS)
    assert response.status_code == 200, response.text
    mail: dict[str, Any] = response.json()
    return mail


def test_admin_update_list_and_delete(region: BackgroundServer) -> None:
    async def scenario() -> str:
        admin = (await _client(region.url, keys.SERVICE_ROLE_KEY)).auth.admin
        created = (await admin.create_user({"email": "ula@example.com", "password": PASSWORD})).user
        assert created.email_confirmed_at is None  # no email_confirm: unconfirmed, as GoTrue
        updated = (
            await admin.update_user_by_id(
                created.id,
                {
                    "email": "ula2@example.com",
                    "password": "a-new-password",
                    "user_metadata": {"nick": "u"},
                    "app_metadata": {"plan": "pro"},
                    "email_confirm": True,
                },
            )
        ).user
        assert updated.email == "ula2@example.com" and updated.email_confirmed_at is not None
        assert updated.user_metadata == {"nick": "u"} and updated.app_metadata["plan"] == "pro"
        assert [(i.provider, i.identity_data["email"]) for i in updated.identities or []] == [
            ("email", "ula2@example.com")
        ]
        user = await _client(region.url)
        signed_in = await user.auth.sign_in_with_password({"email": "ula2@example.com", "password": "a-new-password"})
        assert signed_in.session is not None

        banned = (await admin.update_user_by_id(created.id, {"ban_duration": "24h"})).user  # type: ignore[typeddict-unknown-key]
        assert banned.banned_until is not None
        with pytest.raises(AuthApiError) as refused:
            await user.auth.sign_in_with_password({"email": "ula2@example.com", "password": "a-new-password"})
        assert (refused.value.status, refused.value.code) == (400, "user_banned")
        with pytest.raises(AuthApiError) as token_refused:
            await user.auth.get_user(signed_in.session.access_token)
        assert (token_refused.value.status, token_refused.value.code) == (403, "user_banned")
        lifted = (await admin.update_user_by_id(created.id, {"ban_duration": "none"})).user  # type: ignore[typeddict-unknown-key]
        assert lifted.banned_until is None

        listed = await admin.list_users()
        assert created.id in [u.id for u in listed]
        await admin.delete_user(created.id, should_soft_delete=True)
        gone = (await admin.get_user_by_id(created.id)).user
        assert gone.deleted_at is not None and gone.email != "ula2@example.com" and gone.user_metadata == {}
        await admin.delete_user(created.id)
        with pytest.raises(AuthApiError) as missing:
            await admin.get_user_by_id(created.id)
        assert (missing.value.status, missing.value.code) == (404, "user_not_found")
        return created.id

    user_id = asyncio.run(scenario())
    assert run_sql(region.url, "select 1 from auth.users where id = $1::uuid", user_id) == []


def test_admin_list_pages_default_and_link_headers(region: BackgroundServer) -> None:
    for i in range(3):
        body = {"email": f"page{i}@example.com", "password": PASSWORD}
        assert httpx.post(f"{region.url}/auth/v1/admin/users", headers=SERVICE_HEADERS, json=body).status_code == 200
    empty = httpx.get(f"{region.url}/auth/v1/admin/users?page=&per_page=", headers=SERVICE_HEADERS)
    assert empty.status_code == 200 and len(empty.json()["users"]) == int(empty.headers["X-Total-Count"])
    total = int(empty.headers["X-Total-Count"])
    assert empty.headers["Link"] == '</auth/v1/admin/users?page=1&per_page=50>; rel="last"'
    paged = httpx.get(f"{region.url}/auth/v1/admin/users?per_page=1&page=2", headers=SERVICE_HEADERS)
    assert paged.headers["Link"] == (
        f'</auth/v1/admin/users?page=3&per_page=1>; rel="next", </auth/v1/admin/users?page={total}&per_page=1>; '
        'rel="last"'
    )
    bad = httpx.get(f"{region.url}/auth/v1/admin/users?per_page=x", headers={**SERVICE_HEADERS})
    assert bad.status_code == 400 and bad.json()["msg"].startswith("Bad Pagination Parameters")


def test_email_otp_sign_in_and_token_hash(region: BackgroundServer) -> None:
    async def scenario() -> None:
        client = await _client(region.url)
        sent = await client.auth.sign_in_with_otp({"email": "otto@example.com"})
        assert sent.user is None and sent.session is None
        mail = _last_mail(region.url, "otto@example.com")
        assert mail["type"] == "magiclink" and len(mail["otp"]) == 6
        with pytest.raises(AuthApiError) as wrong:
            await client.auth.verify_otp({"email": "otto@example.com", "token": "000000x", "type": "email"})
        assert (wrong.value.status, wrong.value.code) == (403, "otp_expired")
        verified = await client.auth.verify_otp({"email": "otto@example.com", "token": mail["otp"], "type": "email"})
        assert verified.session is not None and verified.user is not None
        assert verified.user.email_confirmed_at is not None
        assert [a["method"] for a in _claims(verified.session.access_token)["amr"]] == ["otp"]
        with pytest.raises(AuthApiError) as reused:  # redeemed once
            await client.auth.verify_otp({"email": "otto@example.com", "token": mail["otp"], "type": "email"})
        assert reused.value.code == "otp_expired"

        with pytest.raises(AuthApiError) as no_signup:
            await client.auth.sign_in_with_otp(
                {"email": "nobody@example.com", "options": {"should_create_user": False}}
            )
        assert (no_signup.value.status, no_signup.value.code) == (422, "otp_disabled")

        admin = (await _client(region.url, keys.SERVICE_ROLE_KEY)).auth.admin
        link = await admin.generate_link({"type": "magiclink", "email": "otto@example.com"})
        assert link.properties.verification_type == "magiclink" and len(link.properties.email_otp) == 6
        by_hash = await client.auth.verify_otp({"token_hash": link.properties.hashed_token, "type": "magiclink"})
        assert by_hash.session is not None and by_hash.user is not None and by_hash.user.email == "otto@example.com"

    asyncio.run(scenario())


def test_generate_link_types_and_the_link_itself(region: BackgroundServer) -> None:
    async def scenario() -> None:
        admin = (await _client(region.url, keys.SERVICE_ROLE_KEY)).auth.admin
        signup = await admin.generate_link(
            {"type": "signup", "email": "gwen@example.com", "password": PASSWORD, "options": {"data": {"a": 1}}}
        )
        props = signup.properties
        assert signup.user.email == "gwen@example.com" and signup.user.email_confirmed_at is None
        assert signup.user.user_metadata == {"a": 1}
        assert props.action_link == (
            f"{region.url}/auth/v1/verify?token={props.hashed_token}&type=signup&redirect_to={region.url}"
        )
        assert (props.verification_type, props.redirect_to) == ("signup", region.url)
        with pytest.raises(AuthApiError) as unknown:
            await admin.generate_link({"type": "recovery", "email": "nobody-here@example.com"})
        assert (unknown.value.status, unknown.value.code) == (404, "user_not_found")
        invite = await admin.generate_link({"type": "invite", "email": "ivy@example.com"})
        assert invite.user.invited_at is not None and invite.properties.verification_type == "invite"
        new_magic = await admin.generate_link({"type": "magiclink", "email": "mona@example.com"})
        assert new_magic.properties.verification_type == "signup"  # an unknown address signs up, as GoTrue

        # The link (open at the gateway: no apikey) confirms the sign-up and redirects with the session.
        clicked = httpx.get(props.action_link.replace(f"redirect_to={region.url}", "redirect_to=http://app.test/cb"))
        assert clicked.status_code == 303
        target = urlsplit(clicked.headers["location"])
        fragment = {k: v[0] for k, v in parse_qs(target.fragment, keep_blank_values=True).items()}
        assert target.netloc == "app.test" and fragment["type"] == "signup" and fragment["refresh_token"]
        assert _claims(fragment["access_token"])["email"] == "gwen@example.com"
        again = httpx.get(props.action_link)
        assert "error_code=otp_expired" in again.headers["location"]

        change = await admin.generate_link(
            {"type": "email_change_new", "email": "gwen@example.com", "new_email": "gwen2@example.com"}
        )
        assert change.user.new_email == "gwen2@example.com"
        token = parse_qs(urlsplit(change.properties.action_link).query)["token"][0]
        client = await _client(region.url)
        changed = await client.auth.verify_otp({"token_hash": token, "type": "email_change"})
        assert changed.user is not None and changed.user.email == "gwen2@example.com"
        with pytest.raises(AuthApiError) as bad_type:
            await admin.generate_link({"type": "nonsense", "email": "gwen2@example.com"})  # type: ignore[typeddict-item]
        assert bad_type.value.message == "Invalid email action link type requested: nonsense"

    asyncio.run(scenario())


def test_invite_recover_resend_and_reauthenticate(region: BackgroundServer) -> None:
    async def scenario() -> None:
        admin = (await _client(region.url, keys.SERVICE_ROLE_KEY)).auth.admin
        invited = (await admin.invite_user_by_email("inez@example.com", {"data": {"team": "x"}})).user
        assert invited.invited_at is not None and invited.user_metadata == {"team": "x"}
        await admin.invite_user_by_email("inez@example.com")  # not yet confirmed: inviting again is fine
        mail = _last_mail(region.url, "inez@example.com")
        assert mail["type"] == "invite" and mail["action_link"].startswith(f"{region.url}/auth/v1/verify?token=")
        invitee = await _client(region.url)
        accepted = await invitee.auth.verify_otp({"email": "inez@example.com", "token": mail["otp"], "type": "invite"})
        assert accepted.session is not None and accepted.user is not None and accepted.user.email_confirmed_at
        with pytest.raises(AuthApiError) as twice:
            await admin.invite_user_by_email("inez@example.com")
        assert (twice.value.status, twice.value.code) == (422, "email_exists")

        await admin.create_user({"email": "rory@example.com", "password": PASSWORD, "email_confirm": True})
        client = await _client(region.url)
        await client.auth.reset_password_for_email("rory@example.com")
        await client.auth.reset_password_for_email("nobody-at-all@example.com")  # no user: the same empty answer
        mail = _last_mail(region.url, "rory@example.com")
        assert mail["type"] == "recovery"
        recovered = await client.auth.verify_otp(
            {"email": "rory@example.com", "token": mail["otp"], "type": "recovery"}
        )
        assert recovered.session is not None
        await client.auth.update_user({"password": "rory-new-password"})
        await client.auth.reauthenticate()
        assert _last_mail(region.url, "rory@example.com")["type"] == "reauthentication"

        await admin.create_user({"email": "rhea@example.com", "password": PASSWORD})  # unconfirmed
        await client.auth.resend({"type": "signup", "email": "rhea@example.com"})
        mail = _last_mail(region.url, "rhea@example.com")
        assert mail["type"] == "signup"
        confirmed = await client.auth.verify_otp({"email": "rhea@example.com", "token": mail["otp"], "type": "signup"})
        assert confirmed.user is not None and confirmed.user.email_confirmed_at is not None
        signed_in = await client.auth.sign_in_with_password({"email": "rhea@example.com", "password": PASSWORD})
        assert signed_in.session is not None

    asyncio.run(scenario())


def test_anonymous_sign_in(region: BackgroundServer) -> None:
    async def scenario() -> None:
        client = await _client(region.url)
        signed = await client.auth.sign_in_anonymously({"options": {"data": {"guest": True}}})
        assert signed.user is not None and signed.session is not None
        assert signed.user.is_anonymous and signed.user.identities == [] and signed.user.email == ""
        claims = _claims(signed.session.access_token)
        assert claims["is_anonymous"] is True and claims["amr"][0]["method"] == "anonymous"
        with pytest.raises(AuthApiError) as no_mfa:
            await client.auth.mfa.enroll({"factor_type": "totp"})
        assert (no_mfa.value.status, no_mfa.value.code) == (403, "no_authorization")

    asyncio.run(scenario())


def test_totp_mfa_enroll_challenge_verify_unenroll(region: BackgroundServer) -> None:
    async def scenario() -> None:
        admin = (await _client(region.url, keys.SERVICE_ROLE_KEY)).auth.admin
        await admin.create_user({"email": "mfa@example.com", "password": PASSWORD, "email_confirm": True})
        client = await _client(region.url)
        await client.auth.sign_in_with_password({"email": "mfa@example.com", "password": PASSWORD})
        enrolled = await client.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "phone app"})
        assert enrolled.totp is not None and enrolled.totp.uri.startswith("otpauth://totp/")
        assert enrolled.totp.qr_code.startswith("data:image/svg+xml;utf-8,<svg")
        with pytest.raises(AuthApiError) as duplicate:
            await client.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "phone app"})
        assert duplicate.value.code == "mfa_factor_name_conflict"
        challenge = await client.auth.mfa.challenge({"factor_id": enrolled.id})
        assert challenge.expires_at > time.time()
        with pytest.raises(AuthApiError) as wrong:
            await client.auth.mfa.verify({"factor_id": enrolled.id, "challenge_id": challenge.id, "code": "000000"})
        assert (wrong.value.status, wrong.value.code) == (422, "mfa_verification_failed")
        code = auth_totp.code_at(enrolled.totp.secret, time.time())
        verified = await client.auth.mfa.verify({"factor_id": enrolled.id, "challenge_id": challenge.id, "code": code})
        claims = _claims(verified.access_token)
        assert claims["aal"] == "aal2" and [a["method"] for a in claims["amr"]] == ["totp", "password"]
        level = await client.auth.mfa.get_authenticator_assurance_level()
        assert (level.current_level, level.next_level) == ("aal2", "aal2")
        factors = await client.auth.mfa.list_factors()
        assert [f.id for f in factors.totp] == [enrolled.id]
        listed = await admin.mfa.list_factors({"user_id": verified.user.id})
        assert [(f.id, f.status) for f in listed] == [(enrolled.id, "verified")]

        await client.auth.refresh_session()  # the aal2 session refreshes at aal2
        level = await client.auth.mfa.get_authenticator_assurance_level()
        assert level.current_level == "aal2"
        unenrolled = await client.auth.mfa.unenroll({"factor_id": enrolled.id})
        assert unenrolled.id == enrolled.id
        user = await client.auth.get_user()
        assert user is not None and not user.user.factors

    asyncio.run(scenario())


def test_sign_out_scopes(region: BackgroundServer) -> None:
    async def scenario() -> None:
        admin = (await _client(region.url, keys.SERVICE_ROLE_KEY)).auth.admin
        await admin.create_user({"email": "sol@example.com", "password": PASSWORD, "email_confirm": True})
        devices = [await _client(region.url) for _ in range(3)]
        sessions = []
        for device in devices:
            signed = await device.auth.sign_in_with_password({"email": "sol@example.com", "password": PASSWORD})
            assert signed.session is not None
            sessions.append(signed.session.access_token)
        await devices[0].auth.sign_out({"scope": "others"})
        assert await devices[0].auth.get_user() is not None
        for ended in sessions[1:]:
            with pytest.raises(AuthApiError) as gone:
                await devices[0].auth.get_user(ended)
            assert gone.value.code == "session_not_found"
        await devices[0].auth.sign_out({"scope": "local"})
        with pytest.raises(AuthApiError):
            await devices[1].auth.get_user(sessions[0])

    asyncio.run(scenario())


def test_features_this_project_has_off_answer_as_gotrue(region: BackgroundServer) -> None:
    async def scenario() -> None:
        client = await _client(region.url)
        with pytest.raises(AuthApiError) as sso:
            await client.auth.sign_in_with_sso({"domain": "example.com"})
        assert (sso.value.status, sso.value.code, sso.value.message) == (
            404,
            "saml_provider_disabled",
            "SAML 2.0 is disabled",
        )
        admin = (await _client(region.url, keys.SERVICE_ROLE_KEY)).auth.admin
        with pytest.raises(AuthApiError) as oauth:
            await admin.oauth.list_clients()
        assert (oauth.value.status, oauth.value.code) == (404, "feature_disabled")

    asyncio.run(scenario())
    url = region.url
    cases = [
        ("GET", "/auth/v1/authorize?provider=github", None, 400, "validation_failed"),
        ("POST", "/auth/v1/admin/oauth/clients", SERVICE_HEADERS, 404, "feature_disabled"),
        ("GET", "/auth/v1/admin/oauth/clients", LEGACY, 401, "no_authorization"),
        ("GET", "/auth/v1/passkeys", LEGACY, 404, "passkey_disabled"),
        ("POST", "/auth/v1/oauth/token", LEGACY, 404, "feature_disabled"),
        ("POST", "/auth/v1/factors", LEGACY, 401, "no_authorization"),
    ]
    for method, path, headers, status, code in cases:
        response = httpx.request(method, f"{url}{path}", headers=headers)
        assert (response.status_code, response.json().get("error_code")) == (status, code), (path, response.text)
    authorize = httpx.get(f"{url}/auth/v1/authorize?provider=nope")
    assert authorize.json()["msg"] == "Unsupported provider: Provider nope could not be found"
    assert httpx.get(f"{url}/auth/v1/.well-known/jwks.json").json() == {"keys": []}


def test_jwts_without_exp_are_accepted_as_gotrue_accepts_them(region: BackgroundServer) -> None:
    service = keys.sign({"role": "service_role", "iss": "supabase-demo"})
    headers = {"apikey": keys.SERVICE_ROLE_KEY, "Authorization": f"Bearer {service}"}
    assert httpx.get(f"{region.url}/auth/v1/admin/users?per_page=1", headers=headers).status_code == 200
    expired = keys.sign({"role": "service_role", "exp": 1})
    refused = httpx.get(f"{region.url}/auth/v1/admin/users", headers={**headers, "Authorization": f"Bearer {expired}"})
    assert (refused.status_code, refused.json()["error_code"]) == (403, "bad_jwt")
