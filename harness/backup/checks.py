"""The checks a verify or restore makes, and their report as text: one line per check, one row per table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.backup.inventory import SourceSample, TableComparison


@dataclass(frozen=True)
class Check:
    name: str
    """"checksum", "decrypt", "bundle", "roles", "restore", "tables", "source", "replica", "manifest"."""
    ok: bool
    detail: str
    seconds: float = 0.0


def render_checks(checks: Sequence[Check]) -> list[str]:
    return [
        f"  {c.name:<9} {'ok' if c.ok else 'FAILED':<6} {c.detail}" + (f" ({c.seconds:.1f} s)" if c.seconds else "")
        for c in checks
    ]


def render_tables(tables: Sequence[TableComparison], samples: Sequence[SourceSample] = ()) -> list[str]:
    if not tables:
        return []
    at_source = {s.name: s for s in samples}
    width = max(len("table"), *(len(t.name) for t in tables))
    head = f"  {'table':<{width}}  {'backup rows':>11}  {'restored':>11}  {'sample':<7}"
    if samples:
        head += "  source sample"
    lines = [head]
    for t in tables:
        line = f"  {t.name:<{width}}  {_n(t.expected_rows):>11}  {_n(t.actual_rows):>11}  {t.sample:<7}"
        if samples:
            s = at_source.get(t.name)
            line += "  -" if s is None else f"  {s.sampled - s.differing}/{s.sampled} equal"
        if not t.ok:
            line += "  <- differs"
        lines.append(line)
    return lines


def _n(value: int | None) -> str:
    return "missing" if value is None else str(value)
