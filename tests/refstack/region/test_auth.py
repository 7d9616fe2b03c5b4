"""GoTrue at /auth/v1: the official async client end to end, and the exact error shapes over raw HTTP."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import pytest
from supabase_auth.errors import AuthApiError

from harness.model import keys
from harness.procs.serving import BackgroundServer
from supabase import AsyncClientOptions, acreate_client
from tests.refstack.region.conftest import PASSWORD, MakeUser

VERSION = {"X-Supabase-Api-Version": "2024-01-01", "apikey": keys.ANON_KEY}


def _options() -> AsyncClientOptions:
    return AsyncClientOptions(auto_refresh_token=False, persist_session=False)


def test_official_client_signs_up_signs_in_and_refreshes(region: BackgroundServer) -> None:
    async def scenario() -> None:
        client = await acreate_client(region.url, keys.ANON_KEY, options=_options())
        signed_up = await client.auth.sign_up({"email": "Alice@Example.com", "password": PASSWORD})
        assert signed_up.session is not None and signed_up.user is not None
        assert signed_up.user.email == "alice@example.com"
        signed_in = await client.auth.sign_in_with_password({"email": "alice@example.com", "password": PASSWORD})
        assert signed_in.session is not None
        claims = jwt.decode(
            signed_in.session.access_token, keys.JWT_SECRET, algorithms=["HS256"], audience="authenticated"
        )
        assert claims["sub"] == signed_up.user.id
        assert claims["role"] == "authenticated" and claims["aud"] == "authenticated"
        assert claims["iss"] == f"{region.url}/auth/v1"
        assert claims["exp"] - claims["iat"] == 3600
        refreshed = await client.auth.refresh_session()
        assert refreshed.session is not None
        assert refreshed.session.refresh_token != signed_in.session.refresh_token
        user = await client.auth.get_user(refreshed.session.access_token)
        assert user is not None and user.user.id == signed_up.user.id

    asyncio.run(scenario())


def test_signup_creates_the_profile_row(region: BackgroundServer, service_headers: dict[str, str]) -> None:
    body = {"email": "bob@example.com", "password": PASSWORD, "data": {"username": "bob", "display_name": "Bob B"}}
    session = httpx.post(f"{region.url}/auth/v1/signup", headers=VERSION, json=body).json()
    profile = httpx.get(f"{region.url}/rest/v1/profiles?id=eq.{session['user']['id']}", headers=service_headers).json()
    assert profile[0]["username"] == "bob" and profile[0]["display_name"] == "Bob B"


def test_wrong_password_is_invalid_credentials_in_the_2024_shape(region: BackgroundServer, make_user: MakeUser) -> None:
    make_user("carol@example.com")
    response = httpx.post(
        f"{region.url}/auth/v1/token?grant_type=password",
        headers=VERSION,
        json={"email": "carol@example.com", "password": "not-the-password"},
    )
    assert response.status_code == 400
    assert response.json() == {"code": "invalid_credentials", "message": "Invalid login credentials"}
    assert response.headers["X-Supabase-Api-Version"] == "2024-01-01"
    assert response.headers["x-sb-error-code"] == "invalid_credentials"


def test_without_the_version_header_errors_use_the_legacy_shape(region: BackgroundServer) -> None:
    response = httpx.post(
        f"{region.url}/auth/v1/token?grant_type=password",
        headers={"apikey": keys.ANON_KEY},
        json={"email": "nobody@example.com", "password": "whatever1"},
    )
    assert response.json() == {"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"}


def test_the_official_client_raises_auth_api_error_with_the_code(region: BackgroundServer) -> None:
    async def scenario() -> None:
        client = await acreate_client(region.url, keys.ANON_KEY, options=_options())
        await client.auth.sign_up({"email": "dave@example.com", "password": PASSWORD})
        with pytest.raises(AuthApiError) as caught:
            await client.auth.sign_up({"email": "dave@example.com", "password": PASSWORD})
        assert caught.value.code == "user_already_exists" and caught.value.status == 422

    asyncio.run(scenario())


def test_refresh_token_rotates_and_reuse_is_refused(region: BackgroundServer, make_user: MakeUser) -> None:
    _, _, refresh = make_user()
    url = f"{region.url}/auth/v1/token?grant_type=refresh_token"
    first = httpx.post(url, headers=VERSION, json={"refresh_token": refresh})
    assert first.status_code == 200 and first.json()["refresh_token"] != refresh
    again = httpx.post(url, headers=VERSION, json={"refresh_token": refresh})
    assert again.status_code == 400 and again.json()["code"] == "refresh_token_already_used"
    unknown = httpx.post(url, headers=VERSION, json={"refresh_token": "never-issued"})
    assert unknown.json()["code"] == "refresh_token_not_found"
    assert httpx.post(url, headers=VERSION, json={"refresh_token": first.json()["refresh_token"]}).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "eve@example.com", "password": "short"}, 422, "weak_password"),
        ({"email": "not-an-email", "password": PASSWORD}, 400, "validation_failed"),
        ({"password": PASSWORD}, 422, "anonymous_provider_disabled"),  # no email nor phone: an anonymous sign-up
    ],
)
def test_signup_validation(region: BackgroundServer, body: dict[str, str], status: int, code: str) -> None:
    response = httpx.post(f"{region.url}/auth/v1/signup", headers=VERSION, json=body)
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_unknown_grant_type(region: BackgroundServer) -> None:
    response = httpx.post(f"{region.url}/auth/v1/token?grant_type=magic", headers=VERSION, json={})
    assert response.status_code == 400
    assert response.json() == {"code": "invalid_credentials", "message": "unsupported_grant_type"}


def test_user_endpoint_needs_a_valid_bearer(region: BackgroundServer, make_user: MakeUser) -> None:
    user_id, token, _ = make_user()
    ok = httpx.get(f"{region.url}/auth/v1/user", headers={**VERSION, "Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and ok.json()["id"] == user_id
    missing = httpx.get(f"{region.url}/auth/v1/user", headers=VERSION)
    assert (missing.status_code, missing.json()["code"]) == (401, "no_authorization")
    forged = keys.sign({"sub": user_id, "role": "authenticated", "exp": int(time.time()) + 60}, "x" * 40)
    bad = httpx.get(f"{region.url}/auth/v1/user", headers={**VERSION, "Authorization": f"Bearer {forged}"})
    assert (bad.status_code, bad.json()["code"]) == (403, "bad_jwt")


def test_put_user_updates_metadata_and_password(region: BackgroundServer, make_user: MakeUser) -> None:
    _, token, _ = make_user("frank@example.com")
    headers = {**VERSION, "Authorization": f"Bearer {token}"}
    changed = httpx.put(
        f"{region.url}/auth/v1/user", headers=headers, json={"data": {"x": 1}, "password": "new-pass-1"}
    )
    assert changed.json()["user_metadata"] == {"x": 1}
    grant = {"email": "frank@example.com", "password": "new-pass-1"}
    assert httpx.post(f"{region.url}/auth/v1/token?grant_type=password", headers=VERSION, json=grant).status_code == 200


def test_logout_revokes_refresh_tokens(region: BackgroundServer, make_user: MakeUser) -> None:
    _, token, refresh = make_user()
    out = httpx.post(f"{region.url}/auth/v1/logout", headers={**VERSION, "Authorization": f"Bearer {token}"})
    assert out.status_code == 204
    url = f"{region.url}/auth/v1/token?grant_type=refresh_token"
    assert httpx.post(url, headers=VERSION, json={"refresh_token": refresh}).status_code == 400


def test_admin_api_needs_the_service_role(region: BackgroundServer, make_user: MakeUser) -> None:
    _, token, _ = make_user()
    for headers in (
        {**VERSION, "Authorization": f"Bearer {token}"},
        {**VERSION, "Authorization": f"Bearer {keys.ANON_KEY}"},
    ):
        response = httpx.get(f"{region.url}/auth/v1/admin/users", headers=headers)
        assert response.status_code == 403
        assert response.json() == {"code": "not_admin", "message": "User not allowed"}


def test_admin_create_get_list_delete(region: BackgroundServer, service_headers: dict[str, str]) -> None:
    headers = {**service_headers, "X-Supabase-Api-Version": "2024-01-01"}
    body = {"email": "gina@example.com", "password": PASSWORD, "email_confirm": True, "user_metadata": {"a": 1}}
    created = httpx.post(f"{region.url}/auth/v1/admin/users", headers=headers, json=body)
    assert created.status_code == 200 and created.json()["user_metadata"] == {"a": 1}
    user_id = created.json()["id"]
    again = httpx.post(f"{region.url}/auth/v1/admin/users", headers=headers, json=body)
    assert (again.status_code, again.json()["code"]) == (422, "email_exists")
    assert httpx.get(f"{region.url}/auth/v1/admin/users/{user_id}", headers=headers).json()["email"] == body["email"]
    listed = httpx.get(f"{region.url}/auth/v1/admin/users", headers=headers).json()
    assert [u["id"] for u in listed["users"]] == [user_id]
    assert httpx.delete(f"{region.url}/auth/v1/admin/users/{user_id}", headers=headers).status_code == 200
    gone = httpx.get(f"{region.url}/auth/v1/admin/users/{user_id}", headers=headers)
    assert (gone.status_code, gone.json()["code"]) == (404, "user_not_found")
    grant = {"email": body["email"], "password": PASSWORD}
    assert httpx.post(f"{region.url}/auth/v1/token?grant_type=password", headers=VERSION, json=grant).status_code == 400


def test_official_admin_client_creates_users(region: BackgroundServer) -> None:
    async def scenario() -> str:
        client = await acreate_client(region.url, keys.SERVICE_ROLE_KEY, options=_options())
        created = await client.auth.admin.create_user(
            {"email": "hana@example.com", "password": PASSWORD, "email_confirm": True}
        )
        fetched = await client.auth.admin.get_user_by_id(created.user.id)
        return fetched.user.email or ""

    assert asyncio.run(scenario()) == "hana@example.com"


def test_kong_key_auth_on_auth_routes(region: BackgroundServer) -> None:
    missing = httpx.post(f"{region.url}/auth/v1/signup", json={"email": "i@example.com", "password": PASSWORD})
    assert missing.status_code == 401 and missing.json() == {"message": "No API key found in request"}
    wrong = httpx.post(f"{region.url}/auth/v1/signup", headers={"apikey": "nope"}, json={})
    assert wrong.status_code == 401 and wrong.json() == {"message": "Invalid authentication credentials"}
