"""Regressions of a result against a base result (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.model.result import Result
from harness.model.sketch import RELATIVE_ACCURACY
from harness.report.series import GroupRow, group_rows, request_rows

LATENCY_TOLERANCE_PCT = 10.0
"""A percentile more than this much higher than the base's (and beyond both error bounds) is a regression."""
RPS_TOLERANCE_PCT = 10.0
"""Steady-state throughput more than this much lower than the base's is a regression."""
ERROR_TOLERANCE_PP = 1.0
"""An error rate more than this many percentage points above the base's is a regression."""


@dataclass(frozen=True)
class Change:
    metric: str
    base: float | None
    current: float | None
    unit: str
    regressed: bool

    @property
    def change_pct(self) -> float | None:
        if self.base is None or self.current is None or self.base == 0:
            return None
        return 100.0 * (self.current - self.base) / self.base


def compare(result: Result, base: Result, exclude: list[str]) -> list[Change]:
    current_rows = {("group", r.label): r for r in group_rows(result, exclude)}
    current_rows |= {("request", r.label): r for r in request_rows(result)}
    base_rows = {("group", r.label): r for r in group_rows(base, exclude)}
    base_rows |= {("request", r.label): r for r in request_rows(base)}
    changes: list[Change] = []
    for key in sorted(current_rows.keys() & base_rows.keys()):
        changes += _row_changes(
            f"{key[0]}[{key[1]}]", current_rows[key], base_rows[key], with_rps=key == ("group", "all")
        )
    return changes


def _row_changes(prefix: str, cur: GroupRow, base: GroupRow, with_rps: bool) -> list[Change]:
    out = []
    if with_rps:
        worse = cur.rps is not None and base.rps is not None and cur.rps < base.rps * (1 - RPS_TOLERANCE_PCT / 100)
        out.append(Change(f"{prefix}.rps", base.rps, cur.rps, "rps", worse))
    for label, c, b in (("p95", cur.p95_ms, base.p95_ms), ("p99", cur.p99_ms, base.p99_ms)):
        worse = (
            c is not None
            and b is not None
            and c > b * (1 + LATENCY_TOLERANCE_PCT / 100)
            and c - b > RELATIVE_ACCURACY * (c + b)
        )
        out.append(Change(f"{prefix}.{label}", b, c, "ms", worse))
    worse = (
        cur.error_pct is not None and base.error_pct is not None and cur.error_pct > base.error_pct + ERROR_TOLERANCE_PP
    )
    out.append(Change(f"{prefix}.error_rate", base.error_pct, cur.error_pct, "%", worse))
    return out
