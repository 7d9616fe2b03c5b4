"""Resource embedding over the app's foreign keys: many-to-one as an object, one-to-many as an array, `!inner`,
hints, aliases, nesting, and filters, order and limit on an embedded level. RLS applies at every level."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from tests.refstack.region.conftest import create_conversation, create_user, user_headers


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    """One region for the module: its tests only read what `chats` wrote."""
    config = RegionConfig(data_dir=tmp_path_factory.mktemp("region"), bcrypt_cost=4)
    with background(lambda: build_app(config)) as server:
        yield server


@pytest.fixture(scope="module")
def chats(region: BackgroundServer) -> dict[str, Any]:
    """Alice has two conversations (one with Bob): two texts and an image in the first, nothing in the second."""
    alice, alice_token, _ = create_user(region.url)
    bob, bob_token, _ = create_user(region.url)
    busy = create_conversation(region.url, alice_token, [bob])
    quiet = create_conversation(region.url, alice_token, [])
    for i, kind in enumerate(("text", "text", "image")):
        row = {"conversation_id": busy, "sender_id": alice, "client_msg_id": f"m{i}", "kind": kind, "content": f"c{i}"}
        assert (
            httpx.post(f"{region.url}/rest/v1/messages", headers=user_headers(alice_token), json=row).status_code == 201
        )
    titled = httpx.patch(
        f"{region.url}/rest/v1/conversations?id=eq.{busy}", headers=user_headers(alice_token), json={"title": "busy"}
    )
    assert titled.status_code == 204
    return {
        "alice": alice,
        "alice_token": alice_token,
        "bob": bob,
        "bob_token": bob_token,
        "busy": busy,
        "quiet": quiet,
    }


def _get(region: BackgroundServer, token: str, path: str) -> Any:
    response = httpx.get(f"{region.url}/rest/v1/{path}", headers=user_headers(token))
    assert response.status_code == 200, response.text
    return response.json()


def test_many_to_one_is_an_object(region: BackgroundServer, chats: dict[str, Any]) -> None:
    rows = _get(region, chats["bob_token"], "messages?select=client_msg_id,conversations(id,title)&order=client_msg_id")
    assert rows[0] == {"client_msg_id": "m0", "conversations": {"id": chats["busy"], "title": "busy"}}
    assert len(rows) == 3


def test_one_to_many_is_an_array_with_its_own_filters_order_and_limit(
    region: BackgroundServer, chats: dict[str, Any]
) -> None:
    rows = _get(
        region,
        chats["alice_token"],
        "conversations?select=title,messages(client_msg_id,kind)&messages.kind=eq.text"
        "&messages.order=client_msg_id.desc&messages.limit=1&order=title.nullslast",
    )
    assert rows == [
        {"title": "busy", "messages": [{"client_msg_id": "m1", "kind": "text"}]},
        {"title": None, "messages": []},
    ]


def test_inner_drops_parents_without_a_match(region: BackgroundServer, chats: dict[str, Any]) -> None:
    rows = _get(region, chats["alice_token"], "conversations?select=id,messages!inner(kind)&messages.kind=eq.image")
    assert rows == [{"id": chats["busy"], "messages": [{"kind": "image"}]}]
    none = _get(region, chats["alice_token"], "messages?select=id,conversations!inner(id)&conversations.title=eq.nope")
    assert none == []
    # Without !inner the filter only empties the embed.
    left = _get(region, chats["alice_token"], "messages?select=conversations(id)&conversations.title=eq.nope&limit=1")
    assert left == [{"conversations": None}]


def test_hints_aliases_and_nesting(region: BackgroundServer, chats: dict[str, Any]) -> None:
    by_key = _get(
        region,
        chats["bob_token"],
        "messages?select=id,chat:conversations!messages_conversation_id_fkey(title,"
        "members:conversation_members(user_id,role))&client_msg_id=eq.m0",
    )
    members = by_key[0]["chat"]["members"]
    assert by_key[0]["chat"]["title"] == "busy"
    assert sorted(m["role"] for m in members) == ["member", "owner"]
    by_column = _get(region, chats["bob_token"], "messages?select=conversation_id(title)&client_msg_id=eq.m0")
    assert by_column == [{"conversation_id": {"title": "busy"}}]


def test_embedded_rows_obey_row_level_security(region: BackgroundServer, chats: dict[str, Any]) -> None:
    """Bob sees the busy conversation's messages, and neither the quiet conversation nor anything in it."""
    rows = _get(region, chats["bob_token"], "conversations?select=id,messages(id)")
    assert [(r["id"], len(r["messages"])) for r in rows] == [(chats["busy"], 3)]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("messages?select=*,profiles(*)", 400, "PGRST200"),
        ("messages?select=*,conversations!nope(*)", 400, "PGRST200"),
        ("messages?select=*,nope(*)", 400, "PGRST200"),
        ("messages?select=id&conversations.title=eq.x", 400, "PGRST108"),
        ("messages?select=id,conversations(nope)", 400, "42703"),
        ("messages?select=id,conversations(id", 400, "PGRST100"),
    ],
)
def test_embedding_errors(region: BackgroundServer, chats: dict[str, Any], path: str, status: int, code: str) -> None:
    response = httpx.get(f"{region.url}/rest/v1/{path}", headers=user_headers(chats["alice_token"]))
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert set(response.json()) == {"code", "details", "hint", "message"}
