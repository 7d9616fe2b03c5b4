"""The livekit-token edge function: members get a LiveKit token for the conversation's room, others do not."""

from __future__ import annotations

import asyncio

import httpx
import jwt
import pytest

from harness.model import keys
from harness.procs.serving import BackgroundServer
from supabase import AsyncClientOptions, acreate_client
from tests.refstack.region.conftest import PASSWORD, MakeConversation, MakeUser, RegionSql, user_headers


def test_member_gets_a_token_for_the_room(
    region: BackgroundServer, make_user: MakeUser, make_conversation: MakeConversation
) -> None:
    user_id, token, _ = make_user()
    room = make_conversation(token, [])
    response = httpx.post(f"{region.url}/functions/v1/livekit-token", headers=user_headers(token), json={"room": room})
    assert response.status_code == 200
    body = response.json()
    assert body["url"] == "ws://127.0.0.1:7880"
    claims = jwt.decode(body["token"], keys.LIVEKIT_API_SECRET, algorithms=["HS256"])
    assert claims["iss"] == keys.LIVEKIT_API_KEY and claims["sub"] == user_id
    assert claims["video"]["room"] == room and claims["video"]["roomJoin"] is True
    assert claims["video"]["canPublish"] is True and claims["video"]["canSubscribe"] is True


def test_official_client_invokes_the_function(
    region: BackgroundServer, make_user: MakeUser, make_conversation: MakeConversation
) -> None:
    _, token, _ = make_user("fn@example.com")
    room = make_conversation(token, [])

    async def scenario() -> dict[str, str]:
        options = AsyncClientOptions(auto_refresh_token=False, persist_session=False)
        client = await acreate_client(region.url, keys.ANON_KEY, options=options)
        await client.auth.sign_in_with_password({"email": "fn@example.com", "password": PASSWORD})
        result = await client.functions.invoke("livekit-token", {"body": {"room": room}, "responseType": "json"})
        assert isinstance(result, dict)
        return result

    assert asyncio.run(scenario())["url"].startswith("ws://")


def test_non_member_is_forbidden(
    region: BackgroundServer, make_user: MakeUser, make_conversation: MakeConversation
) -> None:
    _, owner_token, _ = make_user()
    _, other_token, _ = make_user()
    room = make_conversation(owner_token, [])
    response = httpx.post(
        f"{region.url}/functions/v1/livekit-token", headers=user_headers(other_token), json={"room": room}
    )
    assert response.status_code == 403 and "not a member" in response.json()["error"]


@pytest.mark.parametrize("authorization", [None, "Bearer garbage", f"Bearer {keys.sign({'role': 'authenticated'})}"])
def test_missing_or_bad_jwt_is_401(region: BackgroundServer, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.post(f"{region.url}/functions/v1/livekit-token", headers=headers, json={"room": "x"})
    assert response.status_code == 401 and response.json()["msg"] == "Invalid JWT"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"room": 5}', b"{}"])
def test_bad_body_is_400(region: BackgroundServer, make_user: MakeUser, body: bytes) -> None:
    _, token, _ = make_user()
    response = httpx.post(f"{region.url}/functions/v1/livekit-token", headers=user_headers(token), content=body)
    assert response.status_code == 400 and "room" in response.json()["error"]


def test_unknown_function_is_404(region: BackgroundServer) -> None:
    assert httpx.post(f"{region.url}/functions/v1/nope").status_code == 404


def test_the_name_comes_from_the_profile_and_membership_from_the_database(
    region: BackgroundServer, make_user: MakeUser, region_sql: RegionSql
) -> None:
    user_id, token, _ = make_user("named@example.com")
    region_sql("update public.profiles set display_name = 'Nadia N' where id = $1::uuid", user_id)
    (row,) = region_sql("insert into public.conversations (created_by) values ($1::uuid) returning id::text", user_id)
    room = row["id"]
    url = f"{region.url}/functions/v1/livekit-token"
    assert httpx.post(url, headers=user_headers(token), json={"room": room}).status_code == 403  # creator, no member

    region_sql(
        "insert into public.conversation_members (conversation_id, user_id) values ($1::uuid, $2::uuid)", room, user_id
    )
    response = httpx.post(url, headers=user_headers(token), json={"room": room})
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["token"], keys.LIVEKIT_API_SECRET, algorithms=["HS256"])
    assert claims["name"] == "Nadia N" and claims["sub"] == user_id

    region_sql("update public.profiles set display_name = null where id = $1::uuid", user_id)
    unnamed = httpx.post(url, headers=user_headers(token), json={"room": room}).json()["token"]
    assert jwt.decode(unnamed, keys.LIVEKIT_API_SECRET, algorithms=["HS256"])["name"] == "named@example.com"
