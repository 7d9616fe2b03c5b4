"""The live figures of a running load: what the Locust master adds to progress.json every second (`live`), for the
run's /metrics (harness/monitor/).

    workers ── report payloads ──► master: LiveTally.absorb(payload) ──► progress.json "live" (every 1 s)
                                                                            │
                                   orchestrator: Live.from_progress(...) ◄──┘ (on each Prometheus scrape)

Bounded in size whatever the run's length: run totals per (request name, type, group), plus one sketch per key
merged over the last `RECENT_S` only. The full result (every window) is result.json's job, at the end.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.model.metrics import DELIVERY_NAME, OBSERVATION_NAMES
from harness.model.result import SketchField
from harness.model.sketch import Sketch

LIVE_VERSION = 1
"""Version of progress.json's `live` object; a reader ignores any other."""
RECENT_S = 30.0
"""Quantiles are read over the windows that started in the last this many seconds (Prometheus summaries'
convention: quantiles over a sliding window, sum and count over the whole run)."""
RATE_WINDOW_S = 10.0
"""The current request rate is the request delta over about this long (workers report every 3 s)."""
NOT_REQUESTS = (DELIVERY_NAME, *OBSERVATION_NAMES)
"""Names that are not requests: left out of the request rate (their own metrics carry them)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class LiveStat(_Model):
    """One (request name, request type, group) over the run so far."""

    name: str
    type: str
    group: str
    count: int = Field(ge=0)
    """Every sample, successful or failed."""
    failures: dict[str, int] = Field(default_factory=dict)
    """Failed samples by kind (`error`, `timeout`, `lost`, `duplicate`, …)."""
    bytes: int = Field(default=0, ge=0)
    """Response bytes."""
    body_bytes: int = Field(default=0, ge=0)
    """Request body bytes the client named (uploads)."""
    ok_count: int = Field(default=0, ge=0)
    ok_sum_ms: float = Field(default=0.0, ge=0)
    """Latency sum of the successful samples."""
    origins: dict[str, int] = Field(default_factory=dict)
    """Responses by the region that served them."""
    recent: SketchField | None = None
    """Latency of the successful samples of the last `recent_s` (None: none)."""


class Live(_Model):
    v: int = LIVE_VERSION
    t_s: float
    """When the master took it (Unix seconds)."""
    recent_s: float = RECENT_S
    rps: float | None = None
    """Requests per second (every name but NOT_REQUESTS) over about RATE_WINDOW_S; None until two reports."""
    stats: list[LiveStat] = Field(default_factory=list)

    @classmethod
    def from_progress(cls, progress: dict[str, Any] | None) -> Live | None:
        """progress.json's `live`, or None when absent, of another version or malformed (a master from another
        harness version, a file cut short): metrics then show no figures rather than wrong ones."""
        data = (progress or {}).get("live")
        if not isinstance(data, dict) or data.get("v") != LIVE_VERSION:
            return None
        try:
            return cls.model_validate(data)
        except (ValidationError, ValueError):
            return None


class _Totals:
    __slots__ = ("body_bytes", "bytes", "count", "failures", "ok_count", "ok_sum_ms", "origins")

    def __init__(self) -> None:
        self.count = 0
        self.bytes = 0
        self.body_bytes = 0
        self.ok_count = 0
        self.ok_sum_ms = 0.0
        self.failures: dict[str, int] = {}
        self.origins: dict[str, int] = {}


_Key = tuple[str, str, str]  # (name, request type, group)


class LiveTally:
    """The master's running totals and recent sketches, fed with the same worker payloads as its ResultBuilder."""

    def __init__(self, window_s: float, recent_s: float = RECENT_S) -> None:
        self.window_s = float(window_s)
        self.recent_s = recent_s
        self._totals: dict[_Key, _Totals] = {}
        self._recent: dict[tuple[int, _Key], Sketch] = {}
        self._history: deque[tuple[float, int]] = deque()

    def absorb(self, payload: dict[str, Any], now_s: float | None = None) -> None:
        """Adds a worker payload (ResultBuilder.to_payload, any version `merge` reads)."""
        first = self._first_recent(time.time() if now_s is None else now_s)
        for row in payload.get("stats", []):
            win, name, rtype, group, count, failures, nbytes, sketch_data = row[:8]
            key = (str(name), str(rtype), str(group))
            t = self._totals.get(key)
            if t is None:
                t = self._totals[key] = _Totals()
            sketch = Sketch.from_dict(sketch_data)
            t.count += int(count)
            t.bytes += int(nbytes)
            t.ok_count += sketch.count
            t.ok_sum_ms += sketch.sum_ms
            _add(t.failures, failures)
            _add(t.origins, row[8])
            legs = row[10] if len(row) > 10 else None  # payload 5: request legs, with the upload body bytes
            if isinstance(legs, dict):
                t.body_bytes += int(legs.get("sent_bytes") or 0)
            if int(win) >= first and sketch.count:
                into = self._recent.get((int(win), key))
                if into is None:
                    self._recent[(int(win), key)] = sketch
                else:
                    into.merge(sketch)

    def _first_recent(self, now_s: float) -> int:
        """Index of the oldest window that still counts as recent."""
        return math.floor((now_s - self.recent_s) / self.window_s)

    def requests(self) -> int:
        return sum(t.count for (name, _, _), t in self._totals.items() if name not in NOT_REQUESTS)

    def snapshot(self, now_s: float | None = None) -> dict[str, Any]:
        """progress.json's `live` (JSON-able); drops the windows that left the recent span."""
        now = time.time() if now_s is None else now_s
        first = self._first_recent(now)
        for k in [k for k in self._recent if k[0] < first]:
            del self._recent[k]
        recent: dict[_Key, Sketch] = {}
        for (_, key), sketch in self._recent.items():
            recent.setdefault(key, Sketch()).merge(sketch)
        stats = []
        for key, t in sorted(self._totals.items()):
            name, rtype, group = key
            r = recent.get(key)
            stats.append(
                {
                    "name": name, "type": rtype, "group": group, "count": t.count, "failures": dict(t.failures),
                    "bytes": t.bytes, "body_bytes": t.body_bytes, "ok_count": t.ok_count, "ok_sum_ms": t.ok_sum_ms,
                    "origins": dict(t.origins), "recent": r.to_dict() if r is not None else None,
                }
            )  # fmt: skip
        return {"v": LIVE_VERSION, "t_s": now, "recent_s": self.recent_s, "rps": self._rate(now), "stats": stats}

    def _rate(self, now_s: float) -> float | None:
        history = self._history
        history.append((now_s, self.requests()))
        while len(history) > 2 and now_s - history[1][0] >= RATE_WINDOW_S:
            history.popleft()
        (t0, r0), (t1, r1) = history[0], history[-1]
        return (r1 - r0) / (t1 - t0) if t1 > t0 else None


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for k, v in counts.items():
        into[k] = into.get(k, 0) + int(v)
