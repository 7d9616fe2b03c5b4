"""PostgREST at /rest/v1: the official async client end to end, and exact statuses and error bodies over raw HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from postgrest.exceptions import APIError

from harness.model import keys
from harness.procs.serving import BackgroundServer
from supabase import AsyncClientOptions, acreate_client
from tests.refstack.region.conftest import PASSWORD, MakeConversation, MakeUser, user_headers


@pytest.fixture
def chat(region: BackgroundServer, make_user: MakeUser, make_conversation: MakeConversation) -> dict[str, Any]:
    """Two members of one conversation, with five messages from the first."""
    alice, alice_token, _ = make_user("alice@example.com")
    bob, bob_token, _ = make_user()
    conversation = make_conversation(alice_token, [bob])
    # One send per message, as a chat sends them: each transaction's now() gives each its own created_at (one bulk
    # insert would give all five the same one, and ordering by created_at would be a tie).
    for i in range(5):
        row = {"conversation_id": conversation, "sender_id": alice, "client_msg_id": f"m{i}", "content": f"hello {i}"}
        sent = httpx.post(f"{region.url}/rest/v1/messages", headers=user_headers(alice_token), json=row)
        assert sent.status_code == 201
    return {"alice": alice, "alice_token": alice_token, "bob": bob, "bob_token": bob_token, "conv": conversation}


def _rest(region: BackgroundServer, token: str, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {**user_headers(token), **kw.pop("headers", {})}
    return httpx.request(method, f"{region.url}/rest/v1/{path}", headers=headers, **kw)


def test_official_client_insert_select_filter_order_count(region: BackgroundServer, chat: dict[str, Any]) -> None:
    async def scenario() -> None:
        options = AsyncClientOptions(auto_refresh_token=False, persist_session=False)
        client = await acreate_client(region.url, keys.ANON_KEY, options=options)
        await client.auth.sign_in_with_password({"email": "alice@example.com", "password": PASSWORD})
        inserted = await (
            client.table("messages")
            .insert(
                {"conversation_id": chat["conv"], "sender_id": chat["alice"], "client_msg_id": "c1", "content": "x"}
            )
            .execute()
        )
        assert inserted.data[0]["content"] == "x" and inserted.data[0]["kind"] == "text"
        page = await (
            client.table("messages")
            .select("*", count="exact")
            .eq("conversation_id", chat["conv"])
            .order("created_at", desc=True)
            .limit(3)
            .execute()
        )
        assert page.count == 6 and [r["client_msg_id"] for r in page.data] == ["c1", "m4", "m3"]
        some = await client.table("messages").select("client_msg_id").in_("client_msg_id", ["m1", "m2"]).execute()
        assert sorted(r["client_msg_id"] for r in some.data) == ["m1", "m2"] and set(some.data[0]) == {"client_msg_id"}
        one = await client.table("messages").select("*").eq("client_msg_id", "m0").single().execute()
        assert one.data["content"] == "hello 0"
        updated = await client.table("messages").update({"content": "edited"}).eq("client_msg_id", "m0").execute()
        assert updated.data[0]["content"] == "edited"
        deleted = await client.table("messages").delete().eq("client_msg_id", "m1").execute()
        assert len(deleted.data) == 1
        with pytest.raises(APIError) as caught:
            await (
                client.table("messages")
                .insert({"conversation_id": chat["conv"], "sender_id": chat["alice"], "client_msg_id": "c1"})
                .execute()
            )
        assert caught.value.code == "23505"

    asyncio.run(scenario())


def test_select_star_percent_encoded_and_content_range(region: BackgroundServer, chat: dict[str, Any]) -> None:
    response = _rest(
        region,
        chat["bob_token"],
        "GET",
        f"messages?select=%2A&conversation_id=eq.{chat['conv']}&order=client_msg_id.asc&limit=2&offset=1",
        headers={"Prefer": "count=exact"},
    )
    assert response.status_code == 206
    assert response.headers["Content-Range"] == "1-2/5"
    head = _rest(region, chat["bob_token"], "HEAD", "messages", headers={"Prefer": "count=exact"})
    assert (head.status_code, head.headers["Content-Range"], head.content) == (200, "0-4/5", b"")
    assert [r["client_msg_id"] for r in response.json()] == ["m1", "m2"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("client_msg_id=neq.m0", ["m1", "m2", "m3", "m4"]),
        ("client_msg_id=gt.m2", ["m3", "m4"]),
        ("client_msg_id=lte.m1", ["m0", "m1"]),
        ("client_msg_id=not.in.(m0,m1,m2)", ["m3", "m4"]),
        ("content=like.*lo 3", ["m3"]),
        ("content=ilike.HELLO*4", ["m4"]),
        ("content=not.ilike.hello*", []),
        ("metadata=is.null&client_msg_id=gte.m3", ["m3", "m4"]),
        ("attachment_path=not.is.null", []),
    ],
)
def test_filters(region: BackgroundServer, chat: dict[str, Any], query: str, expected: list[str]) -> None:
    response = _rest(region, chat["alice_token"], "GET", f"messages?select=client_msg_id&order=client_msg_id&{query}")
    assert response.status_code == 200, response.text
    assert [r["client_msg_id"] for r in response.json()] == expected


def test_order_multi_column_with_nulls(region: BackgroundServer, service_headers: dict[str, str]) -> None:
    url = f"{region.url}/rest/v1/conversations"
    rows = [{"title": t, "is_group": g} for t, g in (("b", True), (None, True), ("a", False), ("c", False))]
    assert httpx.post(url, headers=service_headers, json=rows).status_code == 201
    got = httpx.get(f"{url}?select=title&order=is_group.desc,title.asc.nullsfirst", headers=service_headers).json()
    assert [r["title"] for r in got] == [None, "b", "a", "c"]


def test_insert_statuses_and_prefer(region: BackgroundServer, chat: dict[str, Any]) -> None:
    base = {"conversation_id": chat["conv"], "sender_id": chat["bob"]}
    minimal = _rest(region, chat["bob_token"], "POST", "messages", json={**base, "client_msg_id": "b1"})
    assert (minimal.status_code, minimal.content) == (201, b"")
    rep = _rest(
        region,
        chat["bob_token"],
        "POST",
        'messages?columns="conversation_id","sender_id","client_msg_id"&select=client_msg_id',
        json=[{**base, "client_msg_id": "b2", "ignored": 1}],
        headers={"Prefer": "return=representation"},
    )
    assert (rep.status_code, rep.json()) == (201, [{"client_msg_id": "b2"}])


def test_retried_send_is_a_conflict_or_ignored(region: BackgroundServer, chat: dict[str, Any]) -> None:
    row = {"conversation_id": chat["conv"], "sender_id": chat["bob"], "client_msg_id": "retry-1", "content": "once"}
    first = _rest(region, chat["bob_token"], "POST", "messages", json=row)
    assert first.status_code == 201
    again = _rest(region, chat["bob_token"], "POST", "messages", json=row)
    assert again.status_code == 409
    body = again.json()
    assert body["code"] == "23505" and set(body) == {"code", "details", "hint", "message"}
    assert "messages_sender_id_client_msg_id_key" in body["message"]
    ignored = _rest(
        region,
        chat["bob_token"],
        "POST",
        "messages?on_conflict=sender_id,client_msg_id",
        json=row,
        headers={"Prefer": "return=representation,resolution=ignore-duplicates"},
    )
    assert (ignored.status_code, ignored.json()) == (201, [])
    count = _rest(region, chat["bob_token"], "GET", "messages?client_msg_id=eq.retry-1")
    assert len(count.json()) == 1


def test_upsert_merges(region: BackgroundServer, make_user: MakeUser) -> None:
    user_id, token, _ = make_user()
    response = _rest(
        region,
        token,
        "POST",
        "profiles?on_conflict=id",
        json={"id": user_id, "status": "busy"},
        headers={"Prefer": "return=representation,resolution=merge-duplicates"},
    )
    assert response.status_code == 201 and response.json()[0]["status"] == "busy"


def test_update_and_delete_statuses(region: BackgroundServer, chat: dict[str, Any]) -> None:
    patch = _rest(region, chat["alice_token"], "PATCH", "messages?client_msg_id=eq.m2", json={"content": "new"})
    assert (patch.status_code, patch.content) == (204, b"")
    rep = _rest(
        region,
        chat["alice_token"],
        "DELETE",
        "messages?client_msg_id=eq.m2",
        headers={"Prefer": "return=representation"},
    )
    assert rep.status_code == 200 and rep.json()[0]["content"] == "new"


def test_singular_with_zero_rows_is_406(region: BackgroundServer, chat: dict[str, Any]) -> None:
    response = _rest(
        region,
        chat["alice_token"],
        "GET",
        "messages?client_msg_id=eq.none",
        headers={"Accept": "application/vnd.pgrst.object+json"},
    )
    assert response.status_code == 406
    assert response.json() == {
        "code": "PGRST116",
        "details": "The result contains 0 rows",
        "hint": None,
        "message": "JSON object requested, multiple (or no) rows returned",
    }


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "nope", None, 404, "PGRST205"),
        ("GET", "auth_users", None, 404, "PGRST205"),
        # messages and profiles both reference auth.users, but no foreign key joins them: nothing to embed.
        ("GET", "messages?select=*,profiles(*)", None, 400, "PGRST200"),
        ("GET", "messages?id=foo.1", None, 400, "PGRST100"),
        ("GET", "messages?limit=-1", None, 400, "PGRST100"),
        ("GET", "messages?offset=99999999999999999999", None, 400, "PGRST100"),
        ("GET", "messages?order=id.sideways", None, 400, "PGRST100"),
        ("GET", "messages?nope=eq.1", None, 400, "42703"),
        ("GET", "messages?id=eq.not-a-uuid", None, 400, "22P02"),
        ("POST", "messages", "{not json", 400, "PGRST102"),
        ("POST", "messages", '[{"a":1},{"b":2}]', 400, "PGRST102"),
        ("POST", "messages", '{"bogus": 1}', 400, "PGRST204"),
        # Row-level security checks a new row before its NOT NULL constraints (a message without ids is a 42501
        # for a user), so the not-null case is a conversation that passes its policy.
        ("POST", "conversations", '{"created_by": "ALICE", "is_group": null}', 400, "23502"),
    ],
)
def test_error_shapes(
    region: BackgroundServer, chat: dict[str, Any], method: str, path: str, body: str | None, status: int, code: str
) -> None:
    content = body.replace("ALICE", chat["alice"]) if body else body
    response = _rest(region, chat["alice_token"], method, path, content=content)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["code"] == code and set(payload) == {"code", "details", "hint", "message"}


def test_read_only_replica_refuses_writes_with_405(tmp_path: Any, region: BackgroundServer) -> None:
    from harness.procs.serving import background
    from harness.refstack.region.app import build_app
    from harness.refstack.region.config import RegionConfig

    config = RegionConfig(
        region="ap-northeast-1", data_dir=tmp_path / "replica", role="replica", primary_url=region.url
    )
    with background(lambda: build_app(config)) as replica:
        headers = {"apikey": keys.SERVICE_ROLE_KEY, "Authorization": f"Bearer {keys.SERVICE_ROLE_KEY}"}
        response = httpx.post(f"{replica.url}/rest/v1/conversations", headers=headers, json={"title": "x"})
        assert response.status_code == 405 and response.json()["code"] == "25006"
        assert httpx.get(f"{replica.url}/rest/v1/conversations", headers=headers).status_code == 200
