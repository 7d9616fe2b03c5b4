"""Delivery metrics as Locust request events, so the master merges them like any request (ANCHORS gap 4).

    sender task ── REST insert ok ──► recorder.sent(envelope)        ─► tracker.on_sent (pending per recipient)
    receiver's realtime reader ─────► recorder.received(me, record)  ─► tracker.on_received ─► fire
    run state's expiry greenlet ────► recorder.expire(now)           ─► tracker.expire      ─► fire (lost)

    DELIVERY message.delivery   success: send → receipt at one recipient, ms (first copy, expected or not)
                                failure kind "lost": not received within the timeout (response time = age)
                                failure kind "duplicate": a second copy of a message already received
    DELIVERY message.reordered  success: a receipt with a lower seq than one already received from that sender
                                (its response time is that message's latency)

Each sample is fired through the recipient's reporter, so it carries the recipient's group and user class.

Beside the events, the recorder counts the client's hops of every message (sent, acked, expected, received, and the
outcomes) and sketches the delivery's legs (commit → feed → fan-out → edge → client, from the frame's `_hops`
stamp), per window of the send time (harness/model/hop_counts.py, docs/delivery.md). The plugin ships them with
each worker report (`drain_hops`). `HARNESS_FAULT_DROP_HOP=received:<n>` makes it drop every n-th frame (test hook).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from harness.clients.events import Reporter, RequestFailed
from harness.model import hop_counts as hc
from harness.model.delivery import DeliveryTracker, Envelope, delivery_legs
from harness.model.metrics import DELIVERY_NAME, DELIVERY_TYPE, DUPLICATE_KIND, LOST_KIND, REORDERED_NAME
from harness.model.sketch import Sketch

REQUEST_TYPE = DELIVERY_TYPE


_OUTCOME_HOP = {
    "delivered": hc.DELIVERED,
    "unexpected": hc.UNEXPECTED,
    "duplicate": hc.DUPLICATES,
    "late": hc.LATE,
}


class DeliveryFailure(RequestFailed):
    """A lost or duplicated message; `kind` is what the result builder files the failure under."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(DELIVERY_NAME, 0, kind, message)
        self.kind = kind


class DeliveryRecorder:
    """The tracker plus one reporter per subscribed recipient (one per process, like the tracker)."""

    def __init__(
        self, tracker: DeliveryTracker, timeout_s: float, *, window_s: float = 5.0, fault: hc.Fault | None = None
    ) -> None:
        self.tracker = tracker
        self.timeout_s = timeout_s
        self.window_s = window_s
        """The run's window (`Profile.window_s`): hop counts and leg sketches are kept per window of the send."""
        self.fault = fault if fault is not None and fault.hop == hc.RECEIVED else None
        self._reporters: dict[str, Reporter] = {}
        self.hop_counts: dict[int, dict[str, int]] = {}
        """Window index → client hop → count, since the last `drain_hops`."""
        self.legs: dict[tuple[int, str], Sketch] = {}
        """(window index, leg) → latency sketch, since the last `drain_hops`."""

    def _count(self, sent_at_s: float, hop: str, n: int = 1) -> None:
        window = int(sent_at_s // self.window_s)
        counts = self.hop_counts.get(window)
        if counts is None:
            counts = self.hop_counts[window] = {}
        counts[hop] = counts.get(hop, 0) + n

    def drain_hops(self) -> tuple[dict[int, dict[str, int]], dict[tuple[int, str], Sketch]]:
        """The counts and leg sketches since the last call (the worker ships them, then starts afresh)."""
        counts, legs = self.hop_counts, self.legs
        self.hop_counts, self.legs = {}, {}
        return counts, legs

    def subscribe(self, user_id: str, reporter: Reporter) -> None:
        """The user's realtime subscriptions are confirmed: messages to it are expected from now on."""
        self._reporters[user_id] = reporter
        self.tracker.subscribe(user_id)

    def unsubscribe(self, user_id: str) -> None:
        """The user stopped: its pending messages are dropped uncounted (nobody is left to receive them)."""
        self.tracker.unsubscribe(user_id)
        self._reporters.pop(user_id, None)

    def audience(self, conversation: str, sender: str) -> list[str]:
        return self.tracker.audience(conversation, sender)

    def sending(self, envelope: Envelope) -> None:
        """The message is about to be inserted (once per message, however many tries)."""
        self._count(envelope.sent_at_s, hc.SENT)

    def sent(self, envelope: Envelope, recipients: Iterable[str] | None = None) -> int:
        """The insert was acknowledged: expect the message at its recipients."""
        expected = self.tracker.on_sent(envelope, recipients)
        self._count(envelope.sent_at_s, hc.ACKED)
        if expected:
            self._count(envelope.sent_at_s, hc.EXPECTED, expected)
        return expected

    def received(
        self,
        recipient: str,
        record: Mapping[str, Any],
        now: float | None = None,
        *,
        stamp: Any = None,
        commit_timestamp: Any = None,
    ) -> None:
        """A realtime INSERT of a message row reached `recipient`; `stamp` is the event data's `_hops`, and
        `commit_timestamp` Realtime's, for the latency legs."""
        envelope = Envelope.from_record(record)
        if envelope is None or envelope.run_id != self.tracker.run_id:
            return  # not a load-test message of this run
        if envelope.sender == recipient:
            self._count(envelope.sent_at_s, hc.OWN)
            return
        if self.fault is not None and self.fault.drop(hc.RECEIVED):
            self._count(envelope.sent_at_s, hc.FAULT_DROPPED)
            return
        self._count(envelope.sent_at_s, hc.RECEIVED)
        reporter = self._reporters.get(recipient)
        if reporter is None:
            return  # the recipient has stopped
        now = time.time() if now is None else now
        outcome = self.tracker.on_received(recipient, envelope, now)
        if outcome.kind != "ignored":
            self._count(envelope.sent_at_s, _OUTCOME_HOP[outcome.kind])
        context = {"conversation": envelope.conversation, "reordered": outcome.reordered}
        if outcome.kind in ("delivered", "unexpected"):
            latency_ms = outcome.latency_ms or 0.0
            window = int(envelope.sent_at_s // self.window_s)
            for leg, leg_ms in delivery_legs(envelope.sent_at_s, now, stamp, commit_timestamp):
                sketch = self.legs.get((window, leg))
                if sketch is None:
                    sketch = self.legs[(window, leg)] = Sketch()
                sketch.add(leg_ms)
            reporter.fire(REQUEST_TYPE, DELIVERY_NAME, latency_ms, start_time=envelope.sent_at_s, context=context)
            if outcome.reordered:
                reporter.fire(REQUEST_TYPE, REORDERED_NAME, latency_ms, start_time=envelope.sent_at_s, context=context)
        elif outcome.kind == "duplicate":
            failure = DeliveryFailure(DUPLICATE_KIND, "a second copy of a message already received")
            age_ms = (now - envelope.sent_at_s) * 1000.0
            reporter.fire(
                REQUEST_TYPE, DELIVERY_NAME, max(age_ms, 0.0), exception=failure, start_time=envelope.sent_at_s,
                context={**context, "failure_kind": DUPLICATE_KIND},
            )  # fmt: skip

    def expire(self, now: float | None = None, timeout_s: float | None = None) -> int:
        """Count as lost every message pending longer than the timeout; returns how many."""
        now = time.time() if now is None else now
        lost = self.tracker.expire(now, self.timeout_s if timeout_s is None else timeout_s)
        for item in lost:
            self._count(item.sent_at_s, hc.LOST)
            reporter = self._reporters.get(item.recipient)
            if reporter is None:
                continue
            failure = DeliveryFailure(LOST_KIND, f"not received within {self.timeout_s:g} s")
            reporter.fire(
                REQUEST_TYPE, DELIVERY_NAME, (now - item.sent_at_s) * 1000.0, exception=failure,
                start_time=item.sent_at_s, context={"conversation": item.conversation, "failure_kind": LOST_KIND},
            )  # fmt: skip
        return len(lost)
