"""RealtimeClient against the reference stack's primary region (real server processes)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.clients.events import ListEvent
from harness.clients.supabase.api import postgres_binding
from harness.clients.supabase.realtime import RealtimeClient
from harness.clients.supabase.session import SupabaseSession
from harness.model import keys
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts

SignedIn = Callable[..., SupabaseSession]
WaitFor = Callable[..., bool]


def _send(session: SupabaseSession, conversation_id: str, content: str) -> None:
    row = {
        "conversation_id": conversation_id,
        "sender_id": session.user_id,
        "client_msg_id": str(uuid.uuid4()),
        "content": content,
    }
    session.insert("messages", row).raise_for_error()


def _subscriber(url: str, session: SupabaseSession, events: ListEvent, **kwargs: Any) -> RealtimeClient:
    return RealtimeClient(url, keys.ANON_KEY, session=session, request_event=events, **kwargs)


def test_receives_an_insert_made_by_another_user_through_rest(
    stack: ReferenceStack, signed_in: SignedIn, events: ListEvent, conversation: Callable[..., str], wait_for: WaitFor
) -> None:
    alice, bob = signed_in(), signed_in()
    conversation_id = conversation(alice, bob)
    other_conversation = conversation(alice, bob)
    client = _subscriber(stack.endpoints.primary_url, bob, events)
    received: list[dict[str, Any]] = []
    try:
        assert client.connect()
        channel = client.channel(
            f"conversation:{conversation_id}",
            postgres_changes=[postgres_binding("messages", "INSERT", f"conversation_id=eq.{conversation_id}")],
        ).on_postgres_change(received.append, "INSERT")
        channel.on_postgres_change(lambda data: 1 / 0)  # a buggy callback is logged; the socket stays up
        assert client.join(channel) is None
        assert channel.joined and len(channel.binding_ids) == 1
        _send(alice, other_conversation, "filtered out")
        _send(alice, conversation_id, "hi bob")
        assert wait_for(lambda: len(received) >= 1)
        assert [r["record"]["content"] for r in received] == ["hi bob"]
        assert received[0]["type"] == "INSERT" and received[0]["table"] == "messages"
    finally:
        client.close()
    assert events.names() == ["RT connect", "RT join postgres_changes"]
    assert all(e["response_time"] > 0 for e in events.fired)


def test_broadcast_and_presence_between_two_sockets(
    stack: ReferenceStack, signed_in: SignedIn, events: ListEvent, wait_for: WaitFor
) -> None:
    alice, bob = signed_in(), signed_in()
    a = _subscriber(stack.endpoints.primary_url, alice, events)
    b = _subscriber(stack.endpoints.primary_url, bob, events)
    got: list[dict[str, Any]] = []
    presence: list[str] = []
    try:
        assert a.connect() and b.connect()
        room = f"typing:{uuid.uuid4()}"
        chan_a = a.channel(room, broadcast_ack=True, presence_key="alice")
        chan_b = b.channel(room, presence_key="bob").on_broadcast("typing", got.append)
        chan_b.on_presence(lambda event, payload: presence.append(event))
        assert b.join(chan_b) is None and a.join(chan_a) is None
        assert a.broadcast(chan_a, "typing", {"user": "alice"}) is None
        assert wait_for(lambda: got != [])
        assert got[0]["payload"] == {"user": "alice"}
        assert a.track(chan_a, {"online_at": "now"}) is None
        assert wait_for(lambda: "presence_diff" in presence)
    finally:
        a.close()
        b.close()
    names = events.names()
    assert {"RT join presence", "RT broadcast", "RT presence track"} <= set(names)
    assert events.names(failed=True) == []


def test_refreshed_token_is_pushed_and_keeps_the_channel_alive(
    stack: ReferenceStack, signed_in: SignedIn, conversation: Callable[..., str], wait_for: WaitFor
) -> None:
    alice, bob = signed_in(), signed_in()
    conversation_id = conversation(alice, bob)
    short, _ = keys.mint_access_token(user_id=str(bob.user_id), email="bob@example.com", issuer="t", ttl_s=2)
    bob.set_session(short, bob.refresh_token)
    kept_events, dropped_events = ListEvent(), ListEvent()
    kept = _subscriber(stack.endpoints.primary_url, bob, kept_events)
    dropped = RealtimeClient(
        stack.endpoints.primary_url, keys.ANON_KEY, access_token=short, request_event=dropped_events
    )
    received: list[dict[str, Any]] = []
    binding = [postgres_binding("messages", "INSERT", f"conversation_id=eq.{conversation_id}")]
    try:
        assert kept.connect() and dropped.connect()
        chan = kept.channel("kept", postgres_changes=binding).on_postgres_change(received.append)
        assert kept.join(chan) is None
        assert dropped.join(dropped.channel("dropped", postgres_changes=binding)) is None
        assert bob.refresh().ok  # the session's listener pushes the new token to `kept`'s channels
        assert kept.access_token == bob.access_token != short
        assert wait_for(lambda: dropped_events.names(failed=True) != [], timeout_s=6)
        failure = str(dropped_events.fired[-1]["exception"])
        assert failure.startswith('RT system: system "Token has expired')
        _send(alice, conversation_id, "still there?")
        assert wait_for(lambda: received != [])
        assert chan.joined and kept_events.names(failed=True) == []
    finally:
        kept.close()
        dropped.close()


def test_bad_api_key_fails_the_handshake_with_the_server_message(stack: ReferenceStack, events: ListEvent) -> None:
    client = RealtimeClient(stack.endpoints.primary_url, "not-a-jwt", request_event=events)
    assert not client.connect()
    assert events.names(failed=True) == ["RT connect"]
    assert str(events.fired[0]["exception"]) == 'RT connect: 401 "The token provided is not a valid JWT"'


def test_reconnects_and_resumes_subscriptions_after_the_server_restarts(
    tmp_path: Path, new_user_factory: Callable[[str], tuple[SupabaseSession, SupabaseSession]], wait_for: WaitFor
) -> None:
    config = StackConfig(ports=StackPorts.any(), pieces=("primary",), data_dir=tmp_path)
    with ReferenceStack(config) as first:
        url = first.endpoints.primary_url
        port = first.endpoints.ports["primary"]
        alice, bob = new_user_factory(url)
        conversation_id = _conversation(alice, bob)
        events = ListEvent()
        client = _subscriber(url, bob, events, reconnect_base_s=0.05, reconnect_max_s=0.5, max_reconnect_attempts=60)
        received: list[dict[str, Any]] = []
        binding = [postgres_binding("messages", "INSERT", f"conversation_id=eq.{conversation_id}")]
        chan = client.channel("chat", postgres_changes=binding).on_postgres_change(received.append)
        assert client.connect() and client.join(chan) is None
        first.processes["primary"].stop()  # SIGTERM: the server closes every socket (going away) and exits
        assert wait_for(lambda: "RT connection" in events.names(failed=True), timeout_s=10)
        assert not chan.joined
    try:
        again = StackConfig(ports=StackPorts(primary=port), pieces=("primary",), data_dir=tmp_path)
        with ReferenceStack(again):
            assert wait_for(lambda: client.reconnects == 1 and chan.joined, timeout_s=15)
            _send(alice, conversation_id, "after restart")
            assert wait_for(lambda: received != [])
            assert received[0]["record"]["content"] == "after restart"
    finally:
        client.close()
        alice.close()
        bob.close()
    names = events.names()
    assert names.count("RT join postgres_changes") == 2 and "RT reconnect" in events.names(failed=False)


def _conversation(owner: SupabaseSession, member: SupabaseSession) -> str:
    created = owner.insert("conversations", {"created_by": owner.user_id, "is_group": False}).raise_for_error()
    conversation_id = str(created.body[0]["id"])
    rows = [
        {"conversation_id": conversation_id, "user_id": owner.user_id, "role": "owner"},
        {"conversation_id": conversation_id, "user_id": member.user_id, "role": "member"},
    ]
    owner.insert("conversation_members", rows, returning=False).raise_for_error()  # see conftest
    return conversation_id


@pytest.fixture
def new_user_factory() -> Callable[[str], tuple[SupabaseSession, SupabaseSession]]:
    """Two signed-in users on a stack the test starts itself (the module's `stack` cannot be restarted)."""

    def make(url: str) -> tuple[SupabaseSession, SupabaseSession]:
        sessions = []
        for name in ("alice", "bob"):
            email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
            session = SupabaseSession(url, keys.ANON_KEY)
            session.admin_create_user(keys.SERVICE_ROLE_KEY, email, "correct-horse").raise_for_error()
            session.sign_in(email, "correct-horse").raise_for_error()
            sessions.append(session)
        return sessions[0], sessions[1]

    return make
