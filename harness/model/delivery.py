"""End-to-end message delivery: latency, loss, duplication and reordering across realtime fan-out (ANCHORS gap 4).

    sender                                   region server                         receivers (same worker)
    Envelope(run, sender, seq, sent_at) ──► INSERT messages                ──► postgres_changes INSERT
      metadata = {"harness": {...}}          client_msg_id = run:sender:seq      Envelope.from_record(record)
      tracker.on_sent(envelope) ─────────── expects (recipient, message) ──►    tracker.on_received(me, env, now)
                                             for each subscribed member         tracker.expire(now, timeout_s)

The envelope travels in the message row's `metadata` (jsonb), under one key, `harness`, as compact JSON:
`{"run":"<run id>","from":"<sender user id>","seq":17,"t_ms":1717243200123.456,"conv":"<conversation id>"}`.
`content` stays free for a human-readable body, and broadcast payloads can carry the same object. `client_msg_id`
is `<run id>:<sender>:<seq>`, so a retried send hits the (sender_id, client_msg_id) unique key instead of
duplicating, and the id alone names the message.

Clock caveat: latency is receive time minus the sender's `t_ms`, both `time.time()`. Within one machine (or one
worker: `harness.model.assign` keeps a conversation's members on one worker) the clocks are the same. If sender and
receiver ever run on different machines, their clock offset adds to every latency: keep hosts NTP-synced and
read `DeliveryStats.negative_latency` (latencies below zero, clamped to 0) as a sign of skew.

One tracker per worker process (it is not thread-safe; gevent greenlets never interleave inside its calls).
Per (recipient, message) it holds one dict entry while pending and one, bounded by `retention_s`, after.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.model.metrics import DELIVERY_LEGS, DELIVERY_NAME, DUPLICATE_KIND, LOST_KIND

__all__ = [
    "DELIVERY_NAME",
    "DUPLICATE_KIND",
    "LOST_KIND",
    "DeliveryStats",
    "DeliveryTracker",
    "Envelope",
    "Lost",
    "Outcome",
    "delivery_legs",
]

METADATA_KEY = "harness"
RETENTION_S = 300.0
"""How long a settled (received or lost) message is remembered, to call a later copy a duplicate (or late)."""

_Key = tuple[str, str, int]  # (recipient, sender, seq)


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a load-test message carries so its receivers can measure it."""

    run_id: str
    sender: str
    seq: int
    """Per-sender sequence number, from 1, across all the sender's conversations."""
    sent_at_s: float
    """Unix time (time.time()) just before the send."""
    conversation: str = ""

    @property
    def client_msg_id(self) -> str:
        return f"{self.run_id}:{self.sender}:{self.seq}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "from": self.sender,
            "seq": self.seq,
            "t_ms": round(self.sent_at_s * 1000.0, 3),
            "conv": self.conversation,
        }

    def to_metadata(self) -> dict[str, Any]:
        """The value of the message row's `metadata` column."""
        return {METADATA_KEY: self.to_dict()}

    def message_row(self, content: str = "") -> dict[str, Any]:
        """A `messages` insert for this envelope (the REST body of a send)."""
        return {
            "conversation_id": self.conversation,
            "sender_id": self.sender,
            "client_msg_id": self.client_msg_id,
            "content": content or f"load test message {self.seq}",
            "metadata": self.to_metadata(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Envelope | None:
        """An envelope from its dict; None if `data` is not one (other traffic on the same table)."""
        if not isinstance(data, dict):
            return None
        run, sender, seq, t_ms = data.get("run"), data.get("from"), data.get("seq"), data.get("t_ms")
        conv = data.get("conv", "")
        if not (isinstance(run, str) and isinstance(sender, str) and isinstance(conv, str)):
            return None
        if type(seq) is not int or not isinstance(t_ms, int | float) or isinstance(t_ms, bool):
            return None
        return cls(run, sender, seq, t_ms / 1000.0, conv)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Envelope | None:
        """An envelope from a message row (a realtime `record` or a REST row): metadata may be an object or text."""
        metadata = record.get("metadata")
        if isinstance(metadata, str):
            try:
                metadata = json.loads(metadata)
            except ValueError:
                return None
        if not isinstance(metadata, dict):
            return None
        return cls.from_dict(metadata.get(METADATA_KEY))


OutcomeKind = Literal["delivered", "unexpected", "duplicate", "late", "ignored"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one receipt means. Suggested mapping onto `message.delivery` samples (see harness.gates.verdict):

    delivered   expected and first copy: a success with `latency_ms`
    unexpected  first copy of a message this tracker was not told to expect (sent before the recipient subscribed,
                or by another process): a real delivery, `latency_ms` is valid; record it or not, but count it once
    duplicate   a copy of one already received: a failure of kind `duplicate`
    late        arrived after `expire` declared it lost (already counted as `lost`): record nothing more
    ignored     the recipient's own message, or another run's: record nothing
    `reordered` is true when a lower seq than one already received from the same sender arrives.
    """

    kind: OutcomeKind
    latency_ms: float | None = None
    reordered: bool = False


@dataclass(frozen=True, slots=True)
class Lost:
    recipient: str
    sender: str
    seq: int
    conversation: str
    sent_at_s: float


@dataclass
class DeliveryStats:
    expected: int = 0
    """(recipient, message) pairs expected by `on_sent`."""
    delivered: int = 0
    unexpected: int = 0
    duplicates: int = 0
    reordered: int = 0
    lost: int = 0
    late: int = 0
    negative_latency: int = 0
    """Latencies below zero (clamped to 0): a sign of clock skew between sender and receiver."""


_RECEIVED, _LOST = 1, 2


class DeliveryTracker:
    """Receiver-side accounting of one run's messages, per (recipient, message)."""

    def __init__(
        self,
        run_id: str,
        membership: Mapping[str, Sequence[str]] | None = None,
        *,
        retention_s: float = RETENTION_S,
    ) -> None:
        """`membership`: conversation id → member user ids (`Credentials.membership()`), used by `on_sent` to
        find recipients when none are given."""
        self.run_id = run_id
        self.membership = dict(membership or {})
        self.retention_s = retention_s
        self.stats = DeliveryStats()
        self._subscribed: set[str] = set()
        self._pending: dict[_Key, tuple[float, str]] = {}  # key → (sent_at_s, conversation)
        self._pending_order: deque[tuple[float, _Key]] = deque()
        self._settled: dict[_Key, int] = {}
        self._settled_order: deque[tuple[float, _Key]] = deque()
        self._highest: dict[tuple[str, str], int] = {}  # (recipient, sender) → highest seq received

    # -- subscriptions ------------------------------------------------------------------------------------------

    def subscribe(self, user_id: str) -> None:
        """Call once the user's realtime subscription is confirmed: from then on, messages to it are expected."""
        self._subscribed.add(user_id)

    def unsubscribe(self, user_id: str) -> int:
        """Stop expecting messages for a user (it stopped); returns how many pending ones were dropped uncounted."""
        self._subscribed.discard(user_id)
        dropped = [key for key in self._pending if key[0] == user_id]
        for key in dropped:
            del self._pending[key]
        self.stats.expected -= len(dropped)
        return len(dropped)

    def audience(self, conversation: str, sender: str) -> list[str]:
        """Subscribed members of `conversation` other than `sender` (a user class sends only where this is
        non-empty, so every message it sends has a receiver that can measure it)."""
        return [m for m in self.membership.get(conversation, ()) if m != sender and m in self._subscribed]

    # -- the three calls of a run -------------------------------------------------------------------------------

    def on_sent(self, envelope: Envelope, recipients: Iterable[str] | None = None) -> int:
        """Expect `envelope` at each recipient (default: `audience`); call after the send succeeded. Returns the
        number of (recipient, message) pairs now pending."""
        if recipients is None:
            recipients = self.audience(envelope.conversation, envelope.sender)
        count = 0
        for recipient in recipients:
            key = (recipient, envelope.sender, envelope.seq)
            if key in self._pending or key in self._settled:
                continue  # a retried send of the same message
            self._pending[key] = (envelope.sent_at_s, envelope.conversation)
            self._pending_order.append((envelope.sent_at_s, key))
            count += 1
        self.stats.expected += count
        return count

    def on_received(self, recipient: str, envelope: Envelope, now: float) -> Outcome:
        """Account one receipt at `recipient`; `now` is time.time() at receipt."""
        if envelope.run_id != self.run_id or envelope.sender == recipient:
            return Outcome("ignored")
        stats = self.stats
        key = (recipient, envelope.sender, envelope.seq)
        if self._pending.pop(key, None) is not None:
            kind: OutcomeKind = "delivered"
            stats.delivered += 1
        else:
            state = self._settled.get(key)
            if state == _RECEIVED:
                stats.duplicates += 1
                return Outcome("duplicate")
            if state == _LOST:
                stats.late += 1
                self._settle(key, _RECEIVED, now)  # a second late copy is then a duplicate
                return Outcome("late")
            kind = "unexpected"
            stats.unexpected += 1
        self._settle(key, _RECEIVED, now)
        latency_ms = (now - envelope.sent_at_s) * 1000.0
        if latency_ms < 0.0:
            stats.negative_latency += 1
            latency_ms = 0.0
        stream = (recipient, envelope.sender)
        highest = self._highest.get(stream, 0)
        reordered = envelope.seq < highest
        if reordered:
            stats.reordered += 1
        else:
            self._highest[stream] = envelope.seq
        return Outcome(kind, latency_ms, reordered)

    def expire(self, now: float, timeout_s: float) -> list[Lost]:
        """Declare lost every pending message sent more than `timeout_s` before `now` (call periodically, and at
        the end with timeout_s=0 after a grace period); also forgets settled messages older than `retention_s`."""
        lost: list[Lost] = []
        cutoff = now - timeout_s
        order = self._pending_order
        while order and order[0][0] <= cutoff:
            _, key = order.popleft()
            entry = self._pending.pop(key, None)
            if entry is None:
                continue  # received (or dropped) already
            lost.append(Lost(key[0], key[1], key[2], entry[1], entry[0]))
            self._settle(key, _LOST, now)
        self.stats.lost += len(lost)
        forget = now - self.retention_s
        settled = self._settled_order
        while settled and settled[0][0] < forget:
            _, key = settled.popleft()
            self._settled.pop(key, None)
        return lost

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _settle(self, key: _Key, state: int, now: float) -> None:
        if key not in self._settled:
            self._settled_order.append((now, key))
        self._settled[key] = state


# ---- latency legs ----

_STAMPS = (("commit", "c"), ("feed", "f"), ("fanout", "o"), ("edge", "e"))
"""Leg → the `_hops` stamp that ends it (harness/model/hop_counts.py); the `client` leg ends at the receipt."""


def delivery_legs(
    sent_at_s: float, received_s: float, stamp: Any = None, commit_timestamp: Any = None
) -> list[tuple[str, float]]:
    """The delivery's latency (receipt − send, ms, clamped at 0) split into legs (metrics.DELIVERY_LEGS) by the
    frame's `_hops` stamp, or without one by Realtime's `commit_timestamp` alone. Stamps are clamped into order
    between the send and the receipt, so the legs always sum to the total exactly; a missing stamp folds its leg
    into the next one."""
    sent_ms, recv_ms = sent_at_s * 1000.0, received_s * 1000.0
    if recv_ms < sent_ms:
        recv_ms = sent_ms
    times: dict[str, float] = {}
    if isinstance(stamp, dict):
        for leg, field_name in _STAMPS:
            value = stamp.get(field_name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                times[leg] = float(value)
    elif isinstance(commit_timestamp, str):
        with contextlib.suppress(ValueError):
            times["commit"] = dt.datetime.fromisoformat(commit_timestamp).timestamp() * 1000.0
    legs: list[tuple[str, float]] = []
    previous = sent_ms
    for leg in DELIVERY_LEGS[:-1]:
        at = times.get(leg)
        if at is None:
            continue
        at = min(max(at, previous), recv_ms)
        legs.append((leg, at - previous))
        previous = at
    legs.append((DELIVERY_LEGS[-1], recv_ms - previous))
    return legs
