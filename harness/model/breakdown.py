"""Where request time goes: legs per request name and group, and the top contributors to a p95. Pure; no I/O.

    result.json windows ─► Stat.sketch (total) + Stat.legs (connect / wait / body, tail sums)
        │
        ├─► leg_rows: per (group, name): p50/p95 of the total, medians of each leg, connection reuse
        └─► top_contributors(q=0.95): T = the selection's p95;
                for each name: samples above T (from its sketch's buckets) → share of the tail,
                and the mean legs of its samples above T (from the tail sums) → which leg makes the slow tail

"Above T" counts the buckets above the one holding T, so shares are exact up to the sketch's 1 % buckets. The tail
legs come from coarse buckets of the total (`TAIL_GAMMA`, ~19 %): the bucket holding T counts whole, so a tail
mean can include samples up to 19 % below T. Names without legs (broadcasts, pings) still get their share.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.model.result import TAIL_GAMMA, Legs, Result, Window, _LegAcc, steady_windows
from harness.model.sketch import Sketch, bucket_value_ms

CONNECT_EVENTS: dict[str, str] = {
    "connect": "RT",
    "reconnect": "RT",
    "join": "LIVEKIT",
    "meeting.join": "MEETING",
}
"""Request name → request type of websocket connects: their whole time is the connect leg of their name (Realtime's
socket; LiveKit `/rtc`, whose time runs to the join reply). A dict by name, so the per-request check allocates
nothing."""

LEGS = ("connect", "wait", "body")


@dataclass
class Part:
    """Merged figures of one (group, name): the total sketch and, when the client timed them, its legs."""

    group: str
    name: str
    request_type: str
    count: int = 0
    failures: int = 0
    bytes: int = 0
    sketch: Sketch = field(default_factory=Sketch)
    legs: _LegAcc | None = None

    @property
    def reuse_pct(self) -> float | None:
        if self.legs is None or self.legs.new + self.legs.reused == 0:
            return None
        return 100.0 * self.legs.reused / (self.legs.new + self.legs.reused)


def parts_of(windows: Iterable[Window], exclude: Iterable[str] = ()) -> dict[tuple[str, str], Part]:
    """(group, name) → merged Part over `windows`, leaving out `exclude`d names."""
    excluded = set(exclude)
    out: dict[tuple[str, str], Part] = {}
    for win in windows:
        for stat in win.stats:
            if stat.name in excluded:
                continue
            part = out.get((stat.group, stat.name))
            if part is None:
                part = out[(stat.group, stat.name)] = Part(stat.group, stat.name, stat.request_type)
            part.count += stat.count
            part.failures += sum(stat.failures.values())
            part.bytes += stat.bytes
            part.sketch.merge(stat.sketch)
            if stat.legs is not None:
                if part.legs is None:
                    part.legs = _LegAcc()
                part.legs.merge_legs(stat.legs)
    return out


def steady_parts(result: Result, exclude: Iterable[str] = ()) -> dict[tuple[str, str], Part]:
    """Parts over the steady state (the windows the percentile gates read)."""
    windows, _ = steady_windows(result)
    return parts_of(windows, exclude)


def merged(parts: Iterable[Part], group: str = "", name: str = "") -> Part:
    """One Part merging `parts`, labelled `group` and `name`."""
    out = Part(group, name, "")
    for p in parts:
        out.request_type = out.request_type or p.request_type
        out.count += p.count
        out.failures += p.failures
        out.bytes += p.bytes
        out.sketch.merge(p.sketch)
        if p.legs is not None:
            if out.legs is None:
                out.legs = _LegAcc()
            out.legs.merge_acc(p.legs)
    return out


# ---- legs per name ----


@dataclass(frozen=True)
class LegRow:
    group: str
    name: str
    requests: int
    p50_ms: float | None
    p95_ms: float | None
    connect_p50_ms: float | None
    """Median connect time of the requests that opened a connection."""
    wait_p50_ms: float | None
    body_p50_ms: float | None
    wait_p95_ms: float | None
    body_p95_ms: float | None
    new_connections: int
    reuse_pct: float | None


def leg_rows(parts: dict[tuple[str, str], Part]) -> list[LegRow]:
    """One row per (group, name) whose client timed legs, by group then name."""
    rows = []
    for (group, name), p in sorted(parts.items()):
        if p.legs is None:
            continue
        p50, p95 = p.sketch.quantiles([0.5, 0.95])
        wait50, wait95 = p.legs.wait.quantiles([0.5, 0.95])
        body50, body95 = p.legs.body.quantiles([0.5, 0.95])
        rows.append(
            LegRow(
                group, name, p.count, p50, p95, p.legs.connect.quantile(0.5), wait50, body50, wait95, body95,
                p.legs.new, p.reuse_pct,
            )
        )  # fmt: skip
    return rows


# ---- top contributors to a percentile ----


@dataclass(frozen=True)
class TailLegs:
    """Mean legs of a name's samples above the threshold (approximately; see the module docstring)."""

    samples: int
    total_ms: float
    connect_ms: float
    wait_ms: float
    body_ms: float

    @property
    def dominant(self) -> str:
        """The leg holding most of the tail time: connect, wait or body."""
        legs = {"connect": self.connect_ms, "wait": self.wait_ms, "body": self.body_ms}
        return max(legs, key=lambda k: legs[k])


@dataclass(frozen=True)
class Contributor:
    group: str
    """The group, or "" when the contributors are over all groups (then the name's samples of every group)."""
    name: str
    above: int
    """Samples of this name above the threshold."""
    share_pct: float
    """Its share of all samples above the threshold."""
    p95_ms: float | None
    tail: TailLegs | None
    connect_p50_ms: float | None
    wait_p50_ms: float | None
    body_p50_ms: float | None
    reuse_pct: float | None


@dataclass(frozen=True)
class Tail:
    """The samples above the q-quantile of a selection, and which names make them up."""

    q: float
    threshold_ms: float | None
    above: int
    samples: int
    contributors: list[Contributor]


def count_above(sketch: Sketch, threshold_ms: float) -> int:
    """Samples in buckets whose representative value is above `threshold_ms`."""
    return sum(c for k, c in sketch.bins.items() if bucket_value_ms(k) > threshold_ms * (1 + 1e-9))


def tail_legs(legs: _LegAcc, threshold_ms: float) -> TailLegs | None:
    """Mean legs of the samples in coarse buckets reaching above `threshold_ms` (None when there are none)."""
    sums = [0.0, 0.0, 0.0, 0.0, 0.0]
    for key, row in legs.tail.items():
        if TAIL_GAMMA**key <= threshold_ms:
            continue
        for i in range(5):
            sums[i] += row[i]
    n = sums[0]
    if n <= 0:
        return None
    return TailLegs(int(n), sums[1] / n, sums[2] / n, sums[3] / n, sums[4] / n)


def top_contributors(
    parts: dict[tuple[str, str], Part], *, group: str | None = None, q: float = 0.95, limit: int = 5
) -> Tail:
    """Which names (and legs) make up the samples above the q-quantile of `group` (all groups when None).

    Over all groups, a name's samples of every group are pooled (one row per name)."""
    selected = [p for p in parts.values() if group is None or p.group == group]
    whole = Sketch()
    for p in selected:
        whole.merge(p.sketch)
    threshold = whole.quantile(q)
    if threshold is None:
        return Tail(q, None, 0, 0, [])
    grouped: dict[str, list[Part]] = {}
    for p in selected:
        grouped.setdefault(p.name, []).append(p)
    by_name = {name: merged(ps, group or "", name) for name, ps in grouped.items()}
    counts = {name: count_above(p.sketch, threshold) for name, p in by_name.items()}
    above = sum(counts.values())
    rows: list[Contributor] = []
    for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if n == 0 or len(rows) >= limit:
            continue
        p = by_name[name]
        legs = p.legs
        rows.append(
            Contributor(
                group or "",
                name,
                n,
                100.0 * n / above if above else 0.0,
                p.sketch.quantile(0.95),
                tail_legs(legs, threshold) if legs is not None else None,
                legs.connect.quantile(0.5) if legs is not None else None,
                legs.wait.quantile(0.5) if legs is not None else None,
                legs.body.quantile(0.5) if legs is not None else None,
                p.reuse_pct,
            )
        )
    return Tail(q, threshold, above, whole.count, rows)


def legs_sum_check(legs: Legs) -> float | None:
    """Mean total minus mean (connect + wait + body) over the tail sums, ms: how much the legs leave unexplained
    (client overhead between the clock reads; ~0). None without samples."""
    n = sum(row[1] for row in legs.tail)
    if n <= 0:
        return None
    total = sum(row[2] for row in legs.tail)
    parts = sum(row[3] + row[4] + row[5] for row in legs.tail)
    return (total - parts) / n


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
