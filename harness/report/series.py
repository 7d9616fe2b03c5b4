"""Time series and tallies the reports draw from a result (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.model.metrics import DELIVERY_NAME
from harness.model.result import Result, Span, aggregate, groups_of, steady_windows
from harness.model.sketch import Sketch

QUANTILES = (0.5, 0.95, 0.99)


@dataclass
class GroupRow:
    """Steady-state figures of one group (or one request name) for the report tables."""

    label: str
    requests: int
    rps: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    error_pct: float | None
    network: str = ""


@dataclass
class Series:
    t_s: list[float] = field(default_factory=list)
    """Window starts, seconds from the run start."""
    rps: list[float] = field(default_factory=list)
    failures_per_s: list[float] = field(default_factory=list)
    users_t_s: list[float] = field(default_factory=list)
    users: list[int] = field(default_factory=list)
    percentiles: dict[str, list[tuple[float, float | None, float | None, float | None]]] = field(default_factory=dict)
    """Per group: (t_s, p50, p95, p99) per window."""
    delivery: Sketch = field(default_factory=Sketch)
    origins: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per group: responses by origin region (whole run)."""
    steady_t_s: tuple[float, float] | None = None


def series(result: Result, exclude_names: list[str]) -> Series:
    t0, w = result.run.started_s, result.window_s
    out = Series()
    groups = groups_of(result)
    for win in result.windows:
        agg = aggregate([win], w, exclude_names=exclude_names)
        out.t_s.append(win.start_s - t0)
        out.rps.append(agg.count / w)
        out.failures_per_s.append(agg.failure_count / w)
        for group in groups:
            g = aggregate([win], exclude_names=exclude_names, group=group)
            p50, p95, p99 = g.sketch.quantiles(list(QUANTILES))
            out.percentiles.setdefault(group, []).append((win.start_s - t0, p50, p95, p99))
    for u in result.users:
        out.users_t_s.append(u.t_s - t0)
        out.users.append(u.users)
    whole = Span.of(result.windows, result.run.duration_s)
    out.delivery = whole.select(names={DELIVERY_NAME}).sketch
    for group in groups:
        origins = whole.select(group=group).origins
        if origins:
            out.origins[group] = origins
    ss = result.run.steady_state
    if ss is not None:
        out.steady_t_s = (ss.start_s - t0, ss.end_s - t0)
    return out


class _Rows:
    """A result's steady state and whole run, each aggregated once; every table row is a selection of them."""

    def __init__(self, result: Result) -> None:
        self.result = result
        self.steady = Span.of(*steady_windows(result))
        self.whole = Span.of(result.windows, result.run.duration_s)

    def row(self, label: str, exclude: list[str], *, group: str | None = None, name: str | None = None) -> GroupRow:
        names = {name} if name is not None else None
        excl = [] if name is not None else exclude
        s = self.steady.select(names=names, exclude_names=excl, group=group)
        whole = self.whole.select(names=names, exclude_names=excl, group=group)
        p50, p95, p99 = s.sketch.quantiles(list(QUANTILES))
        info = self.result.run.groups.get(group or "")
        return GroupRow(label, s.count, s.rps, p50, p95, p99, whole.error_pct, info.network if info else "")


def group_rows(result: Result, exclude: list[str]) -> list[GroupRow]:
    rows = _Rows(result)
    return [rows.row("all", exclude), *(rows.row(g, exclude, group=g) for g in groups_of(result))]


def request_rows(result: Result) -> list[GroupRow]:
    rows = _Rows(result)
    return [rows.row(n, [], name=n) for n in sorted({name for _group, name in rows.whole.parts})]
