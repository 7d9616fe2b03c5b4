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
"""The current request rate counts the requests of the complete windows covering about this long."""
REPORT_LAG_S = 4.0
"""A window is complete this long after its end: workers report every 3 s, the master writes every second. Counting
by the samples' own windows, not by when reports arrive, keeps the rate steady (a delta between report arrivals
swung by a third with the number of reports that fell in it)."""
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
        self._window_requests: dict[int, int] = {}
        """Requests (NOT_REQUESTS left out) by the window their samples fall in."""
        self._first_window: int | None = None
        self._merged_recent: dict[_Key, Sketch] = {}
        self._last_rate: float | None = None

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
            if key[0] not in NOT_REQUESTS:
                self._window_requests[int(win)] = self._window_requests.get(int(win), 0) + int(count)
                if self._first_window is None or int(win) < self._first_window:
                    self._first_window = int(win)
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

    def snapshot(self, now_s: float | None = None) -> dict[str, Any]:
        """progress.json's `live` (JSON-able); drops the windows that left the recent span."""
        now = time.time() if now_s is None else now_s
        first = self._first_recent(now)
        for k in [k for k in self._recent if k[0] < first]:
            del self._recent[k]
        recent: dict[_Key, Sketch] = {}
        for (_, key), sketch in self._recent.items():
            recent.setdefault(key, Sketch()).merge(sketch)
        self._merged_recent = recent
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
        self._last_rate = self._rate(now)
        return {"v": LIVE_VERSION, "t_s": now, "recent_s": self.recent_s, "rps": self._last_rate, "stats": stats}

    def headline(self) -> dict[str, Any]:
        """The progress line's figures as the gates count them, over requests only (NOT_REQUESTS left out: a
        delivery's latency is not a request's, and a lost message is not a failed request): requests and the
        failed share over the run, the rate and p95 of the last `snapshot`."""
        requests = failed = 0
        recent = Sketch()
        for key, t in self._totals.items():
            if key[0] in NOT_REQUESTS:
                continue
            requests += t.count
            failed += sum(t.failures.values())
            sketch = self._merged_recent.get(key)
            if sketch is not None:
                recent.merge(sketch)
        return {
            "requests": requests,
            "rps": self._last_rate,
            "p95_ms": recent.quantile(0.95),
            "error_pct": 100.0 * failed / requests if requests else 0.0,
        }

    def _rate(self, now_s: float) -> float | None:
        """Requests per second over the newest complete windows (about RATE_WINDOW_S); None before the first."""
        last = math.floor((now_s - REPORT_LAG_S) / self.window_s) - 1
        if self._first_window is None or self._first_window > last:
            return None
        first = max(self._first_window, last - max(1, math.ceil(RATE_WINDOW_S / self.window_s)) + 1)
        windows = self._window_requests
        for old in [w for w in windows if w < first]:
            del windows[old]  # bounded whatever the run's length (a late report for them counts nowhere)
        return sum(windows.get(w, 0) for w in range(first, last + 1)) / ((last - first + 1) * self.window_s)


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for k, v in counts.items():
        into[k] = into.get(k, 0) + int(v)
