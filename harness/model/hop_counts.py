"""Per-hop message counts and the `_hops` stamp: what the region, the edge and the client count of each load-test
message, and the times they add to its frame (docs/delivery.md).

    client   sent ─► acked ─────────────────────────────────────────────────────────────► received
    region            └─► feed (decoded INSERT) ─► fanout (frame queued) ─► written (socket)
    edge                                                                    └─► relayed

Every counter is an int in a bucket keyed `<run>|<unix second of the send>` (the envelope's `run` and `t_ms`), so
all the hops of one message land in one bucket whenever they happen; the orchestrator folds seconds into the run's
windows. Servers keep buckets in a `HopCounters` (bounded, oldest dropped first) and show them on an admin route.

The stamp travels as the first key of a postgres_changes event's `data`, only on frames of rows carrying a
`harness` envelope and only to subscribers other than the sender:

    "data":{"_hops":{"k":"<run>|<second>","c":<commit ms>,"f":<feed ms>,"o":<fan-out ms>},"schema":…
    the edge inserts ,"e":<relay ms> after the key: {"k":"…","e":…,"c":…,"f":…,"o":…}

Times are Unix milliseconds. Official clients ignore it: supabase-js builds its payload from named fields of
`data`, realtime-py hands `data` on as a dict (docs/protocols.md §4).

Fault injection (tests only, off by default): `HARNESS_FAULT_DROP_HOP=<hop>:<n>` drops every n-th load-test message
at that hop, in the piece that owns it (feed, fanout, written: the region; relayed: the edge; received: the client
recorder), so a test can prove the loss is attributed to that hop. The region and the edge also take it at run
time on their admin routes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError

SENT = "sent"
"""Client: a load-test message about to be inserted (counted once per message, retries included)."""
ACKED = "acked"
"""Client: the insert was answered 2xx (committed)."""
EXPECTED = "expected"
"""Client: (recipient, message) pairs the tracker waits for (subscribed members other than the sender)."""
RECEIVED = "received"
"""Client: frames of the run reaching a recipient's reader (any outcome; the sender's own echo not counted)."""
DELIVERED = "delivered"
UNEXPECTED = "unexpected"
DUPLICATES = "duplicates"
LATE = "late"
LOST = "lost"
OWN = "own"
"""Client: the sender's own message echoed to it (not a delivery)."""
FEED = "feed"
"""Region: the change feed decoded the message's INSERT."""
FANOUT = "fanout"
"""Region: frames queued, one per subscribed channel of a user other than the sender."""
WRITTEN = "written"
"""Region: frames the socket writer handed to the socket."""
DROPPED_SLOW = "dropped_slow"
"""Region: frames lost when a slow socket's outbox overflowed and the socket was dropped."""
DROPPED_CLOSED = "dropped_closed"
"""Region: frames queued to (or left in the outbox of) a socket that had closed."""
WRITE_FAILED = "write_failed"
"""Region: frames lost when a write to the socket failed."""
SLOW_SOCKETS = "slow_sockets"
"""Region: sockets dropped for a full outbox, counted in the bucket of the first load-test frame they held."""
RELAYED = "relayed"
"""Edge: stamped frames forwarded downstream to the viewer."""
FAULT_DROPPED = "fault_dropped"
"""Any piece: messages dropped on purpose by `HARNESS_FAULT_DROP_HOP`."""

CLIENT_HOPS = (SENT, ACKED, EXPECTED, RECEIVED, DELIVERED, UNEXPECTED, DUPLICATES, LATE, LOST, OWN)
REGION_HOPS = (FEED, FANOUT, WRITTEN, DROPPED_SLOW, DROPPED_CLOSED, WRITE_FAILED, SLOW_SOCKETS)
EDGE_HOPS = (RELAYED,)
FAULT_HOPS = (FEED, FANOUT, WRITTEN, RELAYED, RECEIVED)
"""Where `HARNESS_FAULT_DROP_HOP` can drop."""

FAULT_ENV = "HARNESS_FAULT_DROP_HOP"
MAX_BUCKETS = 50_000
"""Buckets a server keeps (one per run and second with traffic: about 14 hours of one run)."""

STAMP_MARK = '"_hops":{"k":"'
"""What the edge looks for in a text frame (a substring check; frames without it pass untouched)."""
STAMP_SEARCH_CHARS = 2048
"""How far into a frame the edge looks: the stamp comes right after the topic and binding ids."""


def bucket_key(run: str, t_ms: float) -> str | None:
    """`<run>|<second>` for an envelope's run and send time; None for a run id unsafe to carry unescaped."""
    if not run or '"' in run or "\\" in run or "|" in run or not run.isascii():
        return None
    return f"{run}|{int(t_ms // 1000)}"


def split_key(key: str) -> tuple[str, int] | None:
    run, sep, second = key.rpartition("|")
    if not sep or not run:
        return None
    try:
        return run, int(second)
    except ValueError:
        return None


def envelope_key(row: dict[str, Any] | None) -> tuple[str, str, float] | None:
    """(bucket key, sender, send ms) of a row's `metadata.harness` envelope; None for other rows. Cheap: the
    region's decoder has already parsed jsonb into dicts."""
    if row is None:
        return None
    metadata = row.get("metadata")
    if not isinstance(metadata, dict):
        return None
    envelope = metadata.get("harness")
    if not isinstance(envelope, dict):
        return None
    run, sender, t_ms = envelope.get("run"), envelope.get("from"), envelope.get("t_ms")
    if not isinstance(run, str) or not isinstance(sender, str) or not isinstance(t_ms, int | float):
        return None
    key = bucket_key(run, float(t_ms))
    return None if key is None else (key, sender, float(t_ms))


def stamp_json(key: str, commit_ms: float, feed_ms: float, fanout_ms: float) -> str:
    """`{"_hops":{…},` — what replaces the opening `{` of an event's `data`."""
    return f'{{"_hops":{{"k":"{key}","c":{commit_ms:.3f},"f":{feed_ms:.3f},"o":{fanout_ms:.3f}}},'


def edge_stamp(text: str, now_ms: float) -> tuple[str, str | None]:
    """(frame with the edge's time added, bucket key) for a stamped frame; (text, None) for any other."""
    start = text.find(STAMP_MARK, 0, STAMP_SEARCH_CHARS)
    if start < 0:
        return text, None
    begin = start + len(STAMP_MARK)
    end = text.find('"', begin)
    if end < 0:
        return text, None
    return f'{text[: end + 1]},"e":{now_ms:.3f}{text[end + 1 :]}', text[begin:end]


class HopCounters:
    """Counts per (bucket, hop), bounded: when full, the oldest bucket goes. One per server piece (asyncio: one
    thread, so no locks)."""

    def __init__(self, max_buckets: int = MAX_BUCKETS) -> None:
        self.max_buckets = max_buckets
        self.buckets: dict[str, dict[str, int]] = {}
        self.evicted = 0

    def add(self, key: str, hop: str, n: int = 1) -> None:
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= self.max_buckets:
                del self.buckets[next(iter(self.buckets))]
                self.evicted += 1
            bucket = self.buckets[key] = {}
        bucket[hop] = bucket.get(hop, 0) + n

    def snapshot(self, run: str | None = None) -> list[dict[str, Any]]:
        """Buckets of `run` (the id itself or any `<run>-…`: each Locust process adds a suffix), or all of them."""
        out = []
        for key, counts in self.buckets.items():
            parts = split_key(key)
            if parts is None or (run is not None and not matches_run(parts[0], run)):
                continue
            out.append({"run": parts[0], "t_s": parts[1], "counts": dict(counts)})
        return out


def matches_run(envelope_run: str, run: str) -> bool:
    return envelope_run == run or envelope_run.startswith(run + "-")


@dataclass
class Fault:
    """Drop every `every`-th load-test message at `hop` (test hook)."""

    hop: str
    every: int
    _seen: int = field(default=0, repr=False)

    def drop(self, hop: str) -> bool:
        if hop != self.hop:
            return False
        self._seen += 1
        return self._seen % self.every == 0

    @classmethod
    def parse(cls, text: str, where: str = FAULT_ENV) -> Fault | None:
        """`<hop>:<n>` (n ≥ 1); empty or "off" is None. ConfigError names what is wrong."""
        text = text.strip()
        if not text or text == "off":
            return None
        hop, sep, every = text.partition(":")
        hop = hop.strip()
        if hop not in FAULT_HOPS or not sep:
            raise ConfigError(
                f"{where}: {text!r} is not <hop>:<n> with hop one of {', '.join(FAULT_HOPS)} (e.g. written:10)"
            )
        try:
            n = int(every)
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(
                f"{where}: {text!r}: n must be a whole number ≥ 1 (drop every n-th message; e.g. written:10)"
            )
        return cls(hop, n)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Fault | None:
        return cls.parse((os.environ if environ is None else environ).get(FAULT_ENV, ""))

    def as_dict(self) -> dict[str, Any]:
        return {"hop": self.hop, "every": self.every}
