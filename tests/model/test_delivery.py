"""Delivery tracking: envelopes, the receiver-side accounting of latency, duplicates, loss and reordering, and one
run end to end over the reference stack's realtime fan-out."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import websocket

from harness.model import keys
from harness.model.delivery import DeliveryTracker, Envelope, Lost, Outcome
from harness.model.target_config import TargetConfig
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts
from harness.run.users import cleanup, provision

RUN = "run-1"
T0 = 1_700_000_000.0
MEMBERS = {"pair": ("alice", "bob"), "group": ("alice", "bob", "carol")}


def envelope(seq: int, sent_at_s: float = T0, sender: str = "alice", conversation: str = "group") -> Envelope:
    return Envelope(RUN, sender, seq, sent_at_s, conversation)


@pytest.fixture
def tracker() -> DeliveryTracker:
    t = DeliveryTracker(RUN, MEMBERS)
    for user in ("alice", "bob", "carol"):
        t.subscribe(user)
    return t


def test_envelope_round_trips_through_metadata_object_and_text() -> None:
    sent = Envelope(RUN, "alice", 17, 1717243200.123456, "conv-1")
    row = sent.message_row()
    assert row["client_msg_id"] == "run-1:alice:17"
    assert row["metadata"] == {
        "harness": {"run": RUN, "from": "alice", "seq": 17, "t_ms": 1717243200123.456, "conv": "conv-1"}
    }
    assert Envelope.from_record(row) == Envelope(RUN, "alice", 17, 1717243200.123456, "conv-1")
    as_text = {**row, "metadata": json.dumps(row["metadata"], separators=(",", ":"))}
    assert Envelope.from_record(as_text) == Envelope.from_record(row)


@pytest.mark.parametrize(
    "metadata",
    [None, "not json", {"other": 1}, {"harness": {"run": RUN, "from": "a", "seq": "1", "t_ms": 1.0}},
     {"harness": {"run": RUN, "from": "a", "seq": 1, "t_ms": True}}, {"harness": []}],
)  # fmt: skip
def test_other_traffic_is_not_an_envelope(metadata: object) -> None:
    assert Envelope.from_record({"metadata": metadata, "content": "hi"}) is None


def test_delivered_once_to_each_recipient_with_latency(tracker: DeliveryTracker) -> None:
    assert tracker.on_sent(envelope(1)) == 2  # bob and carol; never the sender
    bob = tracker.on_received("bob", envelope(1), T0 + 0.25)
    carol = tracker.on_received("carol", envelope(1), T0 + 0.5)
    assert bob == Outcome("delivered", 250.0, False)
    assert carol.kind == "delivered" and carol.latency_ms == pytest.approx(500.0)
    assert tracker.pending == 0 and tracker.stats.delivered == 2 and tracker.stats.expected == 2


def test_a_second_copy_is_a_duplicate_per_recipient(tracker: DeliveryTracker) -> None:
    tracker.on_sent(envelope(1))
    tracker.on_received("bob", envelope(1), T0 + 0.1)
    assert tracker.on_received("bob", envelope(1), T0 + 0.2) == Outcome("duplicate")
    assert tracker.on_received("carol", envelope(1), T0 + 0.2).kind == "delivered"
    assert tracker.stats.duplicates == 1


def test_lower_seq_after_a_higher_one_is_reordered(tracker: DeliveryTracker) -> None:
    for seq in (1, 2, 3):
        tracker.on_sent(envelope(seq, T0 + seq / 100))
    assert not tracker.on_received("bob", envelope(1), T0 + 1).reordered
    assert not tracker.on_received("bob", envelope(3), T0 + 1).reordered
    late_two = tracker.on_received("bob", envelope(2), T0 + 1)
    assert late_two.kind == "delivered" and late_two.reordered
    assert not tracker.on_received("carol", envelope(2), T0 + 1).reordered  # order is per recipient
    assert tracker.stats.reordered == 1


def test_expire_declares_lost_only_what_is_older_than_the_timeout(tracker: DeliveryTracker) -> None:
    tracker.on_sent(envelope(1, T0))
    tracker.on_sent(envelope(2, T0 + 5))
    tracker.on_received("bob", envelope(1), T0 + 0.1)
    lost = tracker.expire(T0 + 10, timeout_s=8)
    assert lost == [Lost("carol", "alice", 1, "group", T0)]
    assert tracker.pending == 2  # seq 2 at bob and carol: still within the timeout
    assert sorted(x.recipient for x in tracker.expire(T0 + 10, timeout_s=0)) == ["bob", "carol"]
    assert tracker.stats.lost == 3 and tracker.pending == 0


def test_arrival_after_being_declared_lost_is_late_then_duplicate(tracker: DeliveryTracker) -> None:
    tracker.on_sent(envelope(1))
    tracker.expire(T0 + 60, timeout_s=30)
    assert tracker.on_received("bob", envelope(1), T0 + 61) == Outcome("late")
    assert tracker.on_received("bob", envelope(1), T0 + 62) == Outcome("duplicate")
    assert tracker.stats.late == 1 and tracker.stats.lost == 2


def test_only_subscribed_members_are_expected(tracker: DeliveryTracker) -> None:
    tracker.unsubscribe("carol")
    assert tracker.audience("group", "alice") == ["bob"]
    assert tracker.audience("pair", "bob") == ["alice"]
    assert tracker.audience("unknown", "alice") == []
    assert tracker.on_sent(envelope(1)) == 1
    assert tracker.expire(T0 + 100, timeout_s=1)[0].recipient == "bob"


def test_unsubscribe_drops_pending_without_counting_them_lost(tracker: DeliveryTracker) -> None:
    tracker.on_sent(envelope(1))
    assert tracker.unsubscribe("bob") == 1
    assert [x.recipient for x in tracker.expire(T0 + 100, timeout_s=1)] == ["carol"]
    assert tracker.stats.expected == 1


def test_retried_send_is_expected_once(tracker: DeliveryTracker) -> None:
    assert tracker.on_sent(envelope(1)) == 2
    assert tracker.on_sent(envelope(1)) == 0
    assert tracker.stats.expected == 2


def test_unexpected_own_and_foreign_messages(tracker: DeliveryTracker) -> None:
    unexpected = tracker.on_received("bob", envelope(9), T0 + 0.05)
    assert unexpected.kind == "unexpected" and unexpected.latency_ms == pytest.approx(50.0)
    assert tracker.on_received("bob", envelope(9), T0 + 0.06).kind == "duplicate"
    assert tracker.on_received("alice", envelope(10), T0).kind == "ignored"  # own message echoed back
    other_run = Envelope("run-2", "alice", 1, T0, "group")
    assert tracker.on_received("bob", other_run, T0).kind == "ignored"


def test_negative_latency_is_clamped_and_counted(tracker: DeliveryTracker) -> None:
    tracker.on_sent(envelope(1, T0 + 2))
    outcome = tracker.on_received("bob", envelope(1, T0 + 2), T0)
    assert outcome.latency_ms == 0.0 and tracker.stats.negative_latency == 1


def test_settled_messages_are_forgotten_after_the_retention() -> None:
    tracker = DeliveryTracker(RUN, MEMBERS, retention_s=10)
    tracker.subscribe("bob")
    tracker.on_sent(envelope(1), ["bob"])
    tracker.on_received("bob", envelope(1), T0 + 1)
    tracker.expire(T0 + 5, timeout_s=1)
    assert tracker.on_received("bob", envelope(1), T0 + 6).kind == "duplicate"
    tracker.expire(T0 + 20, timeout_s=1)
    assert tracker.on_received("bob", envelope(1), T0 + 21).kind == "unexpected"  # memory is bounded


# -- end to end over the reference stack: REST sends, realtime postgres_changes fan-out, the tracker -------------


def test_end_to_end_over_realtime_fan_out() -> None:
    with ReferenceStack(StackConfig(ports=StackPorts.any(), pieces=("primary",))) as stack:
        target = TargetConfig.for_reference_stack(stack.endpoints.primary_url)
        credentials = provision(target, 4, 4, prefix="e2e", run_id="run-1")
        tracker = DeliveryTracker("run-1", credentials.membership())
        tokens: dict[str, str] = {}
        sockets: dict[str, Any] = {}
        ws_url = target.supabase_url.replace("http://", "ws://") + f"/realtime/v1/websocket?apikey={keys.ANON_KEY}"
        try:
            for user in credentials.users:
                session = httpx.post(
                    f"{target.supabase_url}/auth/v1/token?grant_type=password",
                    headers={"apikey": keys.ANON_KEY},
                    json={"email": user.email, "password": user.password},
                    timeout=10,
                )
                tokens[user.id] = session.json()["access_token"]
                sock = websocket.create_connection(ws_url, timeout=5)
                config = {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": "messages"}]}
                sock.send(json.dumps({"topic": "realtime:inbox", "event": "phx_join", "ref": "1",
                                      "payload": {"config": config, "access_token": tokens[user.id]}}))  # fmt: skip
                while json.loads(sock.recv())["event"] != "system":  # "Subscribed to PostgreSQL" follows the reply
                    pass
                sockets[user.id] = sock
                tracker.subscribe(user.id)

            sender = credentials.users[0]
            mine = credentials.conversations_of(sender.id)
            headers = {"apikey": keys.ANON_KEY, "Authorization": f"Bearer {tokens[sender.id]}"}
            for seq, conversation in enumerate(mine, start=1):
                assert tracker.audience(conversation.id, sender.id)
                env = Envelope("run-1", sender.id, seq, time.time(), conversation.id)
                sent = httpx.post(f"{target.supabase_url}/rest/v1/messages", headers=headers, json=env.message_row())
                assert sent.status_code == 201, sent.text
                tracker.on_sent(env)
                retried = httpx.post(f"{target.supabase_url}/rest/v1/messages", headers=headers, json=env.message_row())
                assert retried.status_code == 409  # client_msg_id makes the retry idempotent
            # ring pairs (0,1), (3,0) and the group of 4: 1 + 1 + 3 receivers
            assert tracker.stats.expected == 5

            outcomes: list[Outcome] = []
            deadline = time.monotonic() + 10
            while tracker.pending and time.monotonic() < deadline:
                for user_id, sock in sockets.items():
                    sock.settimeout(0.05)
                    try:
                        frame = json.loads(sock.recv())
                    except websocket.WebSocketTimeoutException:
                        continue
                    if frame["event"] == "postgres_changes":
                        received = Envelope.from_record(frame["payload"]["data"]["record"])
                        assert received is not None
                        outcomes.append(tracker.on_received(user_id, received, time.time()))
            assert tracker.expire(time.time(), timeout_s=0) == []
            delivered = [o for o in outcomes if o.kind == "delivered"]
            assert len(delivered) == 5 and all(o.latency_ms is not None and o.latency_ms >= 0 for o in delivered)
            assert {o.kind for o in outcomes} <= {"delivered", "ignored"}  # the sender's own echo is ignored
        finally:
            for sock in sockets.values():
                sock.close()
            cleanup(target, credentials)
