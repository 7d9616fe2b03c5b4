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
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from harness.clients.events import Reporter, RequestFailed
from harness.model.delivery import DeliveryTracker, Envelope
from harness.model.metrics import DELIVERY_NAME, DELIVERY_TYPE, DUPLICATE_KIND, LOST_KIND, REORDERED_NAME

REQUEST_TYPE = DELIVERY_TYPE


class DeliveryFailure(RequestFailed):
    """A lost or duplicated message; `kind` is what the result builder files the failure under."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(DELIVERY_NAME, 0, kind, message)
        self.kind = kind


class DeliveryRecorder:
    """The tracker plus one reporter per subscribed recipient (one per process, like the tracker)."""

    def __init__(self, tracker: DeliveryTracker, timeout_s: float) -> None:
        self.tracker = tracker
        self.timeout_s = timeout_s
        self._reporters: dict[str, Reporter] = {}

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

    def sent(self, envelope: Envelope, recipients: Iterable[str] | None = None) -> int:
        return self.tracker.on_sent(envelope, recipients)

    def received(self, recipient: str, record: Mapping[str, Any], now: float | None = None) -> None:
        """A realtime INSERT of a message row reached `recipient`."""
        envelope = Envelope.from_record(record)
        reporter = self._reporters.get(recipient)
        if envelope is None or reporter is None:
            return  # not a load-test message, or the recipient has stopped
        now = time.time() if now is None else now
        outcome = self.tracker.on_received(recipient, envelope, now)
        context = {"conversation": envelope.conversation, "reordered": outcome.reordered}
        if outcome.kind in ("delivered", "unexpected"):
            latency_ms = outcome.latency_ms or 0.0
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
            reporter = self._reporters.get(item.recipient)
            if reporter is None:
                continue
            failure = DeliveryFailure(LOST_KIND, f"not received within {self.timeout_s:g} s")
            reporter.fire(
                REQUEST_TYPE, DELIVERY_NAME, (now - item.sent_at_s) * 1000.0, exception=failure,
                start_time=item.sent_at_s, context={"conversation": item.conversation, "failure_kind": LOST_KIND},
            )  # fmt: skip
        return len(lost)
