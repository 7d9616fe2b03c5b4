"""Conformance with the official clients: supabase-py's async client (realtime-py 2.34.1) against the region
server, unchanged. realtime-py drops any frame its pydantic models reject, so these tests fail if a frame shape,
a ref or the binding echo is off."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from realtime import AsyncRealtimeClient, RealtimeSubscribeStates

from harness.model import keys
from harness.procs.serving import BackgroundServer
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from tests.refstack.region.conftest import PASSWORD, MakeConversation, MakeUser, user_id_of

TIMEOUT_S = 5.0


@pytest.fixture(autouse=True)
def no_rejected_frames(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """realtime-py logs (and drops) every server frame its pydantic models reject: there must be none."""
    with caplog.at_level(logging.ERROR, logger="realtime"):
        yield
    rejected = [r.getMessage() for r in caplog.records if "Unrecognized message format" in r.getMessage()]
    assert rejected == []


async def _signed_in(region: BackgroundServer, email: str) -> AsyncClient:
    options = AsyncClientOptions(auto_refresh_token=False, persist_session=False)
    client = await acreate_client(region.url, keys.ANON_KEY, options=options)
    await client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    return client


async def _eventually(predicate: Callable[[], Any], timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.01)


def _email(make_user: MakeUser) -> tuple[str, str, str]:
    email = f"rt-{time.monotonic_ns()}@example.com"
    user_id, token, _ = make_user(email)
    return email, user_id, token


def test_postgres_changes_insert_by_another_user_reaches_a_member_once(
    region: BackgroundServer, make_user: MakeUser, make_conversation: MakeConversation
) -> None:
    alice_email, alice, alice_token = _email(make_user)
    bob_email, bob, _ = _email(make_user)
    eve_email, _, _ = _email(make_user)
    conversation = make_conversation(alice_token, [bob])

    async def scenario() -> None:
        alice_client = await _signed_in(region, alice_email)
        bob_client = await _signed_in(region, bob_email)
        eve_client = await _signed_in(region, eve_email)
        bob_seen: list[dict[str, Any]] = []
        eve_seen: list[dict[str, Any]] = []
        states: list[RealtimeSubscribeStates] = []
        try:
            bob_channel = bob_client.channel("bob-inbox").on_postgres_changes(
                "INSERT", schema="public", table="messages", callback=bob_seen.append
            )
            await bob_channel.subscribe(lambda state, _err: states.append(state))
            eve_channel = eve_client.channel("eve-inbox").on_postgres_changes(
                "INSERT", schema="public", table="messages", callback=eve_seen.append
            )
            await eve_channel.subscribe()
            assert states == [RealtimeSubscribeStates.SUBSCRIBED]
            await (
                alice_client.table("messages")
                .insert(
                    {
                        "conversation_id": conversation,
                        "sender_id": alice,
                        "client_msg_id": "official-1",
                        "content": "hi bob",
                    }
                )
                .execute()
            )
            await _eventually(lambda: bob_seen)
            await asyncio.sleep(0.2)  # anything extra would have arrived by now on loopback
            assert len(bob_seen) == 1 and eve_seen == []
            data = bob_seen[0]["data"]
            assert data["type"] == "INSERT" and data["record"]["content"] == "hi bob"
            assert data["record"]["sender_id"] == alice
        finally:
            for client in (alice_client, bob_client, eve_client):
                await client.remove_all_channels()

    asyncio.run(scenario())


def test_set_auth_token_on_a_bare_realtime_client_and_filtered_binding(
    region: BackgroundServer, make_user: MakeUser, make_conversation: MakeConversation
) -> None:
    _, alice, alice_token = _email(make_user)
    conversation = make_conversation(alice_token, [])
    other = make_conversation(alice_token, [])
    assert user_id_of(alice_token) == alice

    async def scenario() -> None:
        realtime = AsyncRealtimeClient(f"{region.url}/realtime/v1", token=keys.ANON_KEY, auto_reconnect=False)
        await realtime.set_auth(alice_token)
        seen: list[dict[str, Any]] = []
        channel = realtime.channel("filtered").on_postgres_changes(
            "*", schema="public", table="messages", filter=f"conversation_id=eq.{conversation}", callback=seen.append
        )
        states: list[RealtimeSubscribeStates] = []
        await channel.subscribe(lambda state, _err: states.append(state))
        assert states == [RealtimeSubscribeStates.SUBSCRIBED]
        assert region.app is not None
        for target in (other, conversation):
            region.call(_insert_message(region, target, alice))
        await _eventually(lambda: seen)
        await asyncio.sleep(0.2)
        assert [s["data"]["record"]["conversation_id"] for s in seen] == [conversation]
        await realtime.remove_all_channels()

    asyncio.run(scenario())


def _insert_message(region: BackgroundServer, conversation: str, sender: str) -> Callable[[], Any]:
    from harness.refstack.region.state import DB

    async def insert() -> None:
        assert region.app is not None
        async with region.app[DB].as_admin() as conn:
            await conn.execute(
                "insert into messages (conversation_id, sender_id, client_msg_id) values ($1, $2, $3)",
                uuid.UUID(conversation),
                uuid.UUID(sender),
                f"m{time.monotonic_ns()}",
            )

    return insert


def test_broadcast_between_two_clients_and_http_send(region: BackgroundServer) -> None:
    async def scenario() -> None:
        one = await acreate_client(region.url, keys.ANON_KEY)
        two = await acreate_client(region.url, keys.ANON_KEY)
        received: list[dict[str, Any]] = []
        try:
            listener = two.channel("room").on_broadcast("wave", received.append)
            await listener.subscribe()
            sender = one.channel("room")
            await sender.subscribe()
            await sender.send_broadcast("wave", {"from": "one"})
            await _eventually(lambda: received)
            assert received[0]["event"] == "wave" and received[0]["payload"] == {"from": "one"}
            await sender.http_send("wave", {"from": "rest"})
            await _eventually(lambda: len(received) == 2)
            assert received[1]["payload"] == {"from": "rest"}
        finally:
            await one.remove_all_channels()
            await two.remove_all_channels()

    asyncio.run(scenario())


def test_presence_sync_and_join_between_two_clients(region: BackgroundServer) -> None:
    async def scenario() -> None:
        one = await acreate_client(region.url, keys.ANON_KEY)
        two = await acreate_client(region.url, keys.ANON_KEY)
        joins: list[str] = []
        syncs: list[int] = []
        try:
            watcher = two.channel("presence-room", {"config": {"presence": {"key": "two", "enabled": True}}})
            watcher.on_presence_sync(lambda: syncs.append(1)).on_presence_join(lambda key, _c, _n: joins.append(key))
            await watcher.subscribe()
            tracker = one.channel("presence-room", {"config": {"presence": {"key": "one", "enabled": True}}})
            await tracker.subscribe()
            await tracker.track({"status": "online"})
            await _eventually(lambda: "one" in watcher.presence_state())
            assert watcher.presence_state()["one"][0]["status"] == "online"
            assert "one" in joins and syncs
            await tracker.untrack()
            await _eventually(lambda: "one" not in watcher.presence_state())
        finally:
            await one.remove_all_channels()
            await two.remove_all_channels()

    asyncio.run(scenario())


def test_unsubscribe_closes_the_channel(region: BackgroundServer) -> None:
    async def scenario() -> None:
        client = await acreate_client(region.url, keys.ANON_KEY)
        states: list[RealtimeSubscribeStates] = []
        channel = client.channel("short-lived")
        await channel.subscribe(lambda state, _err: states.append(state))
        await channel.unsubscribe()
        await _eventually(lambda: RealtimeSubscribeStates.CLOSED in states)
        assert states == [RealtimeSubscribeStates.SUBSCRIBED, RealtimeSubscribeStates.CLOSED]
        await client.remove_all_channels()

    asyncio.run(scenario())
