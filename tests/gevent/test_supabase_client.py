"""SupabaseSession against the reference stack's primary region (a real server process on an OS-chosen port)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from harness.clients.events import ListEvent, RequestFailed
from harness.clients.supabase.session import SupabaseSession
from harness.model import keys
from harness.model.target_config import Names
from harness.refstack.stack import PRIMARY_REGION, ReferenceStack

SignedIn = Callable[..., SupabaseSession]


def _context(events: ListEvent, name: str) -> dict[str, object]:
    return next(e["context"] for e in events.fired if f"{e['request_type']} {e['name']}" == name)


def test_sign_in_fires_auth_event_with_region_and_labels(
    stack: ReferenceStack, new_user: Callable[[], tuple[str, str]], events: ListEvent
) -> None:
    email, password = new_user()
    session = SupabaseSession(
        stack.endpoints.primary_url, keys.ANON_KEY, request_event=events, user_class="Chatter", group="baseline"
    )
    reply = session.sign_in(email, password)
    assert reply.ok, reply.error
    assert session.user_id and session.access_token and session.seconds_left > 3000
    assert events.names() == ["AUTH sign-in"]
    fired = events.fired[0]
    assert fired["exception"] is None and fired["response_time"] > 0 and fired["response_length"] > 0
    labels = {"origin_region": PRIMARY_REGION, "group": "baseline", "user_class": "Chatter"}
    assert {k: fired["context"][k] for k in labels} == labels
    assert set(fired["context"]) - set(labels) <= {"connect_ms", "wait_ms", "body_ms", "wire_bytes"}  # request legs


def test_wrong_password_is_a_failure_naming_the_server_error_without_the_password(
    stack: ReferenceStack, new_user: Callable[[], tuple[str, str]], events: ListEvent
) -> None:
    email, _ = new_user()
    session = SupabaseSession(stack.endpoints.primary_url, keys.ANON_KEY, request_event=events)
    reply = session.sign_in(email, "not-the-password")
    assert not reply.ok and reply.status == 400
    assert str(reply.error) == 'AUTH sign-in: 400 invalid_credentials "Invalid login credentials"'
    assert events.names(failed=True) == ["AUTH sign-in"]
    assert "not-the-password" not in str(events.fired[0]["exception"])
    assert session.access_token is None


def test_refresh_rotates_tokens_and_tells_listeners(signed_in: SignedIn, events: ListEvent) -> None:
    session = signed_in(events)
    seen: list[str] = []
    session.token_listeners.append(seen.append)
    old_refresh = session.refresh_token
    reply = session.refresh()
    assert reply.ok, reply.error
    assert session.refresh_token != old_refresh
    assert seen == [session.access_token]
    assert events.names()[-1] == "AUTH refresh"


def test_token_close_to_expiry_is_refreshed_before_the_call(signed_in: SignedIn, events: ListEvent) -> None:
    # The stack's token TTL is fixed at 3600 s (launch.py has no option for it), so a margin above the TTL stands
    # in for "less than refresh_margin_s left".
    session = signed_in(events, refresh_margin_s=4000)
    old_refresh = session.refresh_token
    reply = session.select("profiles", filters={"id": f"eq.{session.user_id}"})
    assert reply.ok, reply.error
    assert events.names()[-2:] == ["AUTH refresh", "REST select profiles"]
    assert session.refresh_token != old_refresh


def test_a_401_refreshes_once_and_retries(signed_in: SignedIn, events: ListEvent) -> None:
    session = signed_in(events)
    forged = keys.sign({"sub": session.user_id, "role": "authenticated", "exp": int(time.time()) + 3600}, "wrong" * 8)
    session.set_session(forged, session.refresh_token)
    reply = session.select("profiles", filters={"id": f"eq.{session.user_id}"})
    assert reply.ok, reply.error
    assert events.names()[-3:] == ["REST select profiles", "AUTH refresh", "REST select profiles"]
    assert events.fired[-3]["exception"] is not None and events.fired[-1]["exception"] is None
    assert session.access_token != forged


def test_expired_token_without_refresh_token_fails_with_the_postgrest_message(
    stack: ReferenceStack, signed_in: SignedIn, events: ListEvent
) -> None:
    user = signed_in()
    expired, _ = keys.mint_access_token(user_id=str(user.user_id), email="x@example.com", issuer="t", ttl_s=-120)
    session = SupabaseSession(stack.endpoints.primary_url, keys.ANON_KEY, request_event=events)
    session.set_session(expired)
    reply = session.select("messages")
    assert reply.status == 401 and isinstance(reply.error, RequestFailed)
    assert str(reply.error).startswith("REST select messages: 401 PGRST301")
    assert "expired" in str(reply.error).lower()
    assert expired not in str(reply.error)


def test_rest_round_trip_and_retried_send_counts_as_delivered(
    signed_in: SignedIn, events: ListEvent, conversation: Callable[..., str]
) -> None:
    alice, bob = signed_in(events), signed_in()
    conversation_id = conversation(alice, bob)
    message = {
        "conversation_id": conversation_id,
        "sender_id": alice.user_id,
        "client_msg_id": str(uuid.uuid4()),
        "content": "hello bob",
    }
    sent = alice.insert("messages", message)
    assert sent.ok and sent.status == 201 and sent.body[0]["content"] == "hello bob"
    again = alice.insert("messages", message, duplicate_ok=True)
    assert again.ok and again.duplicate and again.status == 409
    strict = alice.insert("messages", message)
    assert strict.error is not None and str(strict.error).startswith("REST insert messages: 409 23505")

    seen = bob.select("messages", filters={"conversation_id": f"eq.{conversation_id}"}, order="created_at.desc")
    assert [row["content"] for row in seen.body] == ["hello bob"]
    updated = alice.update("messages", {"content": "edited"}, filters={"id": f"eq.{sent.body[0]['id']}"})
    assert updated.ok and updated.body[0]["content"] == "edited"
    deleted = alice.delete("messages", filters={"id": f"eq.{sent.body[0]['id']}"})
    assert deleted.ok
    assert bob.select("messages", filters={"conversation_id": f"eq.{conversation_id}"}).body == []
    names = events.names()
    assert {"REST insert messages", "REST update messages", "REST delete messages"} <= set(names)
    assert all(e["context"]["origin_region"] == PRIMARY_REGION for e in events.fired)


def test_storage_round_trip_with_bytes(
    signed_in: SignedIn, events: ListEvent, conversation: Callable[..., str]
) -> None:
    alice, bob = signed_in(events), signed_in(events)
    conversation_id = conversation(alice, bob)
    data = bytes(range(256)) * 64
    path = f"{conversation_id}/photo.bin"
    uploaded = alice.upload(path, data)
    assert uploaded.ok, uploaded.error
    assert uploaded.body["Key"] == f"attachments/{path}"
    raw_path = f"{conversation_id}/raw.bin"
    assert alice.upload(raw_path, b"raw body", multipart=False, content_type="text/plain").ok

    downloaded = bob.download(path)
    assert downloaded.ok and downloaded.body == data
    signed = alice.sign(path, expires_in_s=60)
    assert signed.ok and "token=" in signed.body["signedURL"]
    fetched = alice.fetch_signed(signed.body["signedURL"])
    assert fetched.ok and fetched.body == data
    listed = alice.list(f"{conversation_id}/")
    assert listed.ok and sorted(item["name"] for item in listed.body) == ["photo.bin", "raw.bin"]
    removed = alice.remove([path, raw_path])
    assert removed.ok
    missing = bob.download(path)
    assert missing.error is not None and "not found" in str(missing.error).lower()

    assert _context(events, "STORAGE upload")["bytes_sent"] == len(data)
    assert _context(events, "STORAGE download")["bytes_received"] == len(data)
    assert {"STORAGE sign", "STORAGE fetch signed", "STORAGE list", "STORAGE delete"} <= set(events.names())


def test_livekit_token_function(
    stack: ReferenceStack, signed_in: SignedIn, events: ListEvent, conversation: Callable[..., str]
) -> None:
    alice = signed_in(events)
    conversation_id = conversation(alice)
    reply = alice.livekit_token(conversation_id)
    assert reply.ok, reply.error
    assert reply.body["token"].count(".") == 2 and reply.body["url"].startswith("ws://")
    assert events.names()[-1] == "FUNC livekit-token"
    stranger = signed_in(events)
    refused = stranger.livekit_token(conversation_id)
    assert refused.status == 403 and "not a member" in str(refused.error)


def test_unreachable_target_is_a_failure_not_an_exception(events: ListEvent) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = SupabaseSession(f"http://127.0.0.1:{port}", keys.ANON_KEY, request_event=events, connection_timeout_s=2)
    reply = session.select("messages")
    assert reply.status == 0 and reply.error is not None
    assert str(reply.error).startswith("REST select messages:")
    assert events.names(failed=True) == ["REST select messages"]


def test_the_configured_names_pick_the_token_function_and_bucket(
    signed_in: SignedIn, events: ListEvent, conversation: Callable[..., str]
) -> None:
    # The reference stack serves only its own names: a refusal naming ours shows which path was asked for.
    alice = signed_in(events, names=Names(bucket="chat-files", livekit_function="meeting-token"))
    conversation_id = conversation(alice)
    refused = alice.livekit_token(conversation_id)
    assert refused.status == 404 and "'meeting-token' not found" in str(refused.error)
    assert events.names()[-1] == "FUNC meeting-token"
    upload = alice.upload(f"{conversation_id}/x.bin", b"x")
    assert alice.bucket == "chat-files" and str(upload.error) == 'STORAGE upload: 400 NoSuchBucket "Bucket not found"'
    assert alice.upload(f"{conversation_id}/x.bin", b"x", bucket="attachments").ok
