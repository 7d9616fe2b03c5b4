"""GoTrue's rows in PostgreSQL: bcrypt hashes, the migration's trigger, identities, sessions behind the tokens,
rotation, logout scopes and the cascade of an admin delete, each checked in the database itself."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import bcrypt
import httpx
import jwt

from harness.model import keys
from harness.procs.serving import BackgroundServer
from tests.refstack.region.conftest import PASSWORD, TEST_BCRYPT_COST, MakeUser, RegionSql

VERSION = {"X-Supabase-Api-Version": "2024-01-01", "apikey": keys.ANON_KEY}


def _claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, keys.JWT_SECRET, algorithms=["HS256"], audience="authenticated"))


def _sign_in(url: str, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/auth/v1/token?grant_type=password", headers=VERSION, json={"email": email, "password": password}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _refresh(url: str, refresh_token: str) -> httpx.Response:
    return httpx.post(
        f"{url}/auth/v1/token?grant_type=refresh_token", headers=VERSION, json={"refresh_token": refresh_token}
    )


def test_password_is_stored_as_a_bcrypt_hash_of_the_configured_cost(
    region: BackgroundServer, make_user: MakeUser, region_sql: RegionSql
) -> None:
    user_id, _, _ = make_user()
    (row,) = region_sql("select encrypted_password from auth.users where id = $1::uuid", user_id)
    stored = row["encrypted_password"]
    assert stored.startswith(f"$2b${TEST_BCRYPT_COST:02d}$")
    assert bcrypt.checkpw(PASSWORD.encode(), stored.encode())
    assert not bcrypt.checkpw(b"not-the-password", stored.encode())


def test_the_profile_comes_from_the_migrations_trigger(region: BackgroundServer, region_sql: RegionSql) -> None:
    data = {"username": "zoe", "display_name": "Zoe Z", "avatar_url": "https://example.com/z.png"}
    signed_up = httpx.post(
        f"{region.url}/auth/v1/signup",
        headers=VERSION,
        json={"email": "zoe@example.com", "password": PASSWORD, "data": data},
    ).json()
    user_id = signed_up["user"]["id"]
    (profile,) = region_sql("select username, display_name, avatar_url from public.profiles where id = $1", user_id)
    assert dict(profile) == data
    (meta,) = region_sql("select raw_user_meta_data::text as m from auth.users where id = $1", user_id)
    assert json.loads(meta["m"]) == data

    # One set of rules: without the trigger, signing up makes no profile (the server does not insert one itself).
    region_sql("drop trigger on_auth_user_created on auth.users")
    later = httpx.post(
        f"{region.url}/auth/v1/signup", headers=VERSION, json={"email": "yan@example.com", "password": PASSWORD}
    ).json()
    assert region_sql("select 1 from public.profiles where id = $1", later["user"]["id"]) == []


def test_every_user_has_an_email_identity_on_its_user_object(
    region: BackgroundServer, service_headers: dict[str, str], region_sql: RegionSql
) -> None:
    signed_up = httpx.post(
        f"{region.url}/auth/v1/signup", headers=VERSION, json={"email": "Ida@Example.com", "password": PASSWORD}
    ).json()
    user = signed_up["user"]
    (identity,) = user["identities"]
    assert identity["provider"] == "email" and identity["user_id"] == user["id"] and identity["id"] == user["id"]
    assert identity["identity_data"] == {
        "sub": user["id"],
        "email": "ida@example.com",
        "email_verified": True,
        "phone_verified": False,
    }
    assert identity["email"] == "ida@example.com" and uuid.UUID(identity["identity_id"])
    (row,) = region_sql("select id::text, provider, provider_id from auth.identities where user_id = $1", user["id"])
    assert (row["id"], row["provider"], row["provider_id"]) == (identity["identity_id"], "email", user["id"])

    bearer = {**VERSION, "Authorization": f"Bearer {signed_up['access_token']}"}
    assert httpx.get(f"{region.url}/auth/v1/user", headers=bearer).json()["identities"] == [identity]
    admin = httpx.get(f"{region.url}/auth/v1/admin/users/{user['id']}", headers=service_headers).json()
    assert admin["identities"][0]["identity_id"] == identity["identity_id"]


def test_access_token_claims_name_a_stored_session(
    region: BackgroundServer, make_user: MakeUser, region_sql: RegionSql
) -> None:
    user_id, _, _ = make_user("kim@example.com")
    session = _sign_in(region.url, "kim@example.com")
    claims = _claims(session["access_token"])
    assert claims["sub"] == user_id and claims["email"] == "kim@example.com" and claims["phone"] == ""
    assert claims["aal"] == "aal1" and claims["is_anonymous"] is False and claims["role"] == "authenticated"
    assert claims["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert claims["amr"] == [{"method": "password", "timestamp": claims["amr"][0]["timestamp"]}]
    assert abs(claims["amr"][0]["timestamp"] - claims["iat"]) <= 1
    (stored,) = region_sql(
        "select user_id::text, aal::text from auth.sessions where id = $1::uuid", claims["session_id"]
    )
    assert (stored["user_id"], stored["aal"]) == (user_id, "aal1")

    refreshed = _refresh(region.url, session["refresh_token"]).json()
    again = _claims(refreshed["access_token"])
    assert again["session_id"] == claims["session_id"]
    assert again["amr"] == claims["amr"]  # the sign-in time, not the refresh time


def test_refresh_revokes_the_used_token_and_chains_its_successor(
    region: BackgroundServer, make_user: MakeUser, region_sql: RegionSql
) -> None:
    _, _, first = make_user()
    second = _refresh(region.url, first).json()["refresh_token"]
    rows = region_sql(
        "select token, revoked, parent, session_id from auth.refresh_tokens where token = any($1::text[])",
        [first, second],
    )
    by_token = {r["token"]: r for r in rows}
    assert by_token[first]["revoked"] is True and by_token[second]["revoked"] is False
    assert by_token[second]["parent"] == first
    assert by_token[first]["session_id"] == by_token[second]["session_id"]


def test_concurrent_refreshes_of_one_token_yield_exactly_one_successor(
    region: BackgroundServer, make_user: MakeUser
) -> None:
    _, _, refresh = make_user()
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: _refresh(region.url, refresh), range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 7
    assert {r.json()["code"] for r in responses if r.status_code == 400} == {"refresh_token_already_used"}


def test_logout_local_ends_only_that_session_and_its_tokens(
    region: BackgroundServer, make_user: MakeUser, region_sql: RegionSql
) -> None:
    user_id, _, _ = make_user("lou@example.com")
    phone, laptop = _sign_in(region.url, "lou@example.com"), _sign_in(region.url, "lou@example.com")
    bearer = {**VERSION, "Authorization": f"Bearer {phone['access_token']}"}
    assert httpx.post(f"{region.url}/auth/v1/logout?scope=local", headers=bearer).status_code == 204

    gone = httpx.get(f"{region.url}/auth/v1/user", headers=bearer)
    assert (gone.status_code, gone.json()["code"]) == (403, "session_not_found")
    again = httpx.post(f"{region.url}/auth/v1/logout", headers=bearer)
    assert (again.status_code, again.json()["code"]) == (403, "session_not_found")
    assert _refresh(region.url, phone["refresh_token"]).json()["code"] == "refresh_token_not_found"
    assert _refresh(region.url, laptop["refresh_token"]).status_code == 200
    phone_session = _claims(phone["access_token"])["session_id"]
    assert region_sql("select 1 from auth.sessions where id = $1::uuid", phone_session) == []

    laptop_bearer = {**VERSION, "Authorization": f"Bearer {laptop['access_token']}"}
    assert httpx.post(f"{region.url}/auth/v1/logout", headers=laptop_bearer).status_code == 204
    assert region_sql("select 1 from auth.sessions where user_id = $1::uuid", user_id) == []


def test_logout_others_keeps_the_callers_session(region: BackgroundServer, make_user: MakeUser) -> None:
    make_user("oli@example.com")
    mine, other = _sign_in(region.url, "oli@example.com"), _sign_in(region.url, "oli@example.com")
    bearer = {**VERSION, "Authorization": f"Bearer {mine['access_token']}"}
    assert httpx.post(f"{region.url}/auth/v1/logout?scope=others", headers=bearer).status_code == 204
    assert httpx.get(f"{region.url}/auth/v1/user", headers=bearer).status_code == 200
    assert _refresh(region.url, other["refresh_token"]).json()["code"] == "refresh_token_not_found"
    bad_scope = httpx.post(f"{region.url}/auth/v1/logout?scope=everyone", headers=bearer)
    assert (bad_scope.status_code, bad_scope.json()["code"]) == (400, "validation_failed")


def test_admin_delete_cascades_to_profile_memberships_and_messages(
    region: BackgroundServer, make_user: MakeUser, service_headers: dict[str, str], region_sql: RegionSql
) -> None:
    leaving, _, _ = make_user()
    staying, _, _ = make_user()
    (conversation,) = region_sql(
        "insert into public.conversations (created_by, is_group) values ($1::uuid, true) returning id", staying
    )
    conversation_id = conversation["id"]
    region_sql(
        "insert into public.conversation_members (conversation_id, user_id) values ($1, $2::uuid), ($1, $3::uuid)",
        conversation_id,
        leaving,
        staying,
    )
    region_sql(
        "insert into public.messages (conversation_id, sender_id, client_msg_id, content)"
        " values ($1, $2::uuid, 'a', 'bye'), ($1, $3::uuid, 'b', 'hi')",
        conversation_id,
        leaving,
        staying,
    )

    deleted = httpx.delete(f"{region.url}/auth/v1/admin/users/{leaving}", headers=service_headers)
    assert deleted.status_code == 200

    def count(table: str, column: str, user_id: str) -> int:
        (row,) = region_sql(f"select count(*) as n from {table} where {column} = $1::uuid", user_id)
        return int(row["n"])

    for table, column in [
        ("auth.users", "id"),
        ("auth.identities", "user_id"),
        ("auth.sessions", "user_id"),
        ("public.profiles", "id"),
        ("public.conversation_members", "user_id"),
        ("public.messages", "sender_id"),
    ]:
        assert count(table, column, leaving) == 0, table
    assert count("public.conversation_members", "user_id", staying) == 1
    assert count("public.messages", "sender_id", staying) == 1
    again = httpx.delete(f"{region.url}/auth/v1/admin/users/{leaving}", headers=service_headers)
    assert (again.status_code, again.json()["error_code"]) == (404, "user_not_found")
    not_a_uuid = httpx.delete(f"{region.url}/auth/v1/admin/users/not-a-uuid", headers=service_headers)
    assert not_a_uuid.status_code == 404


def test_admin_created_user_without_email_confirm_cannot_sign_in(
    region: BackgroundServer, service_headers: dict[str, str]
) -> None:
    body = {"email": "una@example.com", "password": PASSWORD}
    created = httpx.post(f"{region.url}/auth/v1/admin/users", headers=service_headers, json=body)
    assert created.status_code == 200 and "email_confirmed_at" not in created.json()  # omitted when unset, as GoTrue
    refused = httpx.post(f"{region.url}/auth/v1/token?grant_type=password", headers=VERSION, json=body)
    assert (refused.status_code, refused.json()["code"]) == (400, "email_not_confirmed")


def test_admin_list_pages_newest_first_with_the_total(
    region: BackgroundServer, make_user: MakeUser, service_headers: dict[str, str]
) -> None:
    ids = [make_user()[0] for _ in range(3)]
    first = httpx.get(f"{region.url}/auth/v1/admin/users?page=1&per_page=2", headers=service_headers)
    second = httpx.get(f"{region.url}/auth/v1/admin/users?page=2&per_page=2", headers=service_headers)
    assert first.headers["X-Total-Count"] == "3"
    listed = [u["id"] for u in first.json()["users"] + second.json()["users"]]
    assert listed == list(reversed(ids))
    far = httpx.get(f"{region.url}/auth/v1/admin/users?page=99999999999999999999", headers=service_headers)
    assert far.status_code == 200 and far.json()["users"] == []
