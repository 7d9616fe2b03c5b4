"""LiveKitClient against the reference stack's LiveKit stand-in and the region's `livekit-token` function."""

from __future__ import annotations

from collections.abc import Callable

from harness.clients.events import ListEvent
from harness.clients.livekit import LiveKitClient, http_url
from harness.clients.supabase.session import SupabaseSession
from harness.model import keys
from harness.refstack.stack import ReferenceStack

SignedIn = Callable[..., SupabaseSession]


def _minting(stack: ReferenceStack, events: ListEvent) -> LiveKitClient:
    return LiveKitClient(
        stack.endpoints.livekit_url,
        api_key=keys.LIVEKIT_API_KEY,
        api_secret=keys.LIVEKIT_API_SECRET,
        request_event=events,
    )


def test_join_ping_leave_with_a_minted_token(stack: ReferenceStack, events: ListEvent) -> None:
    client = _minting(stack, events)
    token, url = client.join_token("alice", "standup")  # type: ignore[misc]
    joined = client.join(token, url)
    assert joined.ok, joined.error
    assert joined.join_ms > 0 and joined.connection is not None
    connection = joined.connection
    assert connection.identity == "alice" and connection.room == "standup"
    rtt_ms = connection.ping()
    assert isinstance(rtt_ms, float) and rtt_ms > 0
    participants = client.list_participants("standup")
    assert participants is not None and [p.identity for p in participants] == ["alice"]
    connection.leave()
    assert not connection.connected
    assert events.names() == ["LIVEKIT join", "LIVEKIT ping", "LIVEKIT twirp ListParticipants", "LIVEKIT leave"]
    assert events.fired[0]["response_time"] == joined.join_ms
    assert events.names(failed=True) == []
    client.close()


def test_token_from_the_livekit_token_function(
    stack: ReferenceStack, signed_in: SignedIn, events: ListEvent, conversation: Callable[..., str]
) -> None:
    alice = signed_in(events)
    conversation_id = conversation(alice)
    client = LiveKitClient(stack.endpoints.livekit_url, request_event=events)  # no secret: must use the function
    got = client.join_token(str(alice.user_id), conversation_id, session=alice)
    assert isinstance(got, tuple)
    token, url = got
    assert http_url(url) == http_url(stack.endpoints.livekit_url)
    joined = client.join(token, url)
    assert joined.ok and joined.connection is not None
    assert joined.connection.room == conversation_id
    joined.connection.leave()
    assert events.names()[-3:] == ["FUNC livekit-token", "LIVEKIT join", "LIVEKIT leave"]


def test_twirp_room_lifecycle(stack: ReferenceStack, events: ListEvent) -> None:
    client = _minting(stack, events)
    room = client.create_room("planning", empty_timeout_s=60)
    assert room is not None and room.name == "planning" and room.sid
    rooms = client.list_rooms(("planning",))
    assert rooms is not None and [r.name for r in rooms] == ["planning"]
    assert client.delete_room("planning")
    assert client.list_rooms(("planning",)) == []
    twirp = [
        "LIVEKIT twirp CreateRoom",
        "LIVEKIT twirp ListRooms",
        "LIVEKIT twirp DeleteRoom",
        "LIVEKIT twirp ListRooms",
    ]
    assert events.names() == twirp
    impostor = LiveKitClient(
        stack.endpoints.livekit_url,
        api_key="devkey",
        api_secret="wrong-secret-0123456789-0123456789",
        request_event=events,
    )
    assert impostor.list_rooms() is None
    failure = events.fired[-1]["exception"]
    assert failure is not None and str(failure).startswith("LIVEKIT twirp ListRooms: 401")


def test_rejected_token_is_a_join_failure_with_the_server_message(stack: ReferenceStack, events: ListEvent) -> None:
    client = LiveKitClient(
        stack.endpoints.livekit_url,
        api_key="devkey",
        api_secret="wrong-secret-0123456789-0123456789",
        request_event=events,
    )
    joined = client.join(client.mint_token("mallory", "standup"))
    assert not joined.ok and joined.connection is None
    assert joined.error is not None and joined.error.status == 401
    assert events.names(failed=True) == ["LIVEKIT join"]
    assert "wrong-secret" not in str(joined.error)
