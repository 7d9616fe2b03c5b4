"""Pure figures of a drill, computed from what it recorded (no I/O): RTO from the per-second timeline, and the
time from the fault to a first event.

RTO, as the drill defines it: from the fault to the start of the first second after which every second's error
rate stays at or under the load gate for `hold_s` seconds (seconds with no request sent count as failing: users
who cannot even send are not served). None when that never happened within the drill.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from harness.model.drill import DrillSample


def _good(sample: DrillSample | None, error_pct: float) -> bool:
    return sample is not None and sample.sent > 0 and sample.error_pct <= error_pct


def recovered_at(samples: Sequence[DrillSample], fault_t_s: float, hold_s: float, error_pct: float) -> int | None:
    """The first second (t_s) at or after the fault from which `hold_s` good seconds follow; None if none."""
    by_t = {s.t_s: s for s in samples}
    if not by_t:
        return None
    last = max(by_t)
    hold = max(1, round(hold_s))
    start = int(fault_t_s)
    for t in range(start, last - hold + 2):
        if all(_good(by_t.get(u), error_pct) for u in range(t, t + hold)):
            return t
    return None


def rto_s(samples: Sequence[DrillSample], fault_t_s: float, hold_s: float, error_pct: float) -> float | None:
    t = recovered_at(samples, fault_t_s, hold_s, error_pct)
    if t is None:
        return None
    # A fault that never raised the error rate recovers at once (0 s), not at the start of its own second.
    return max(0.0, t - fault_t_s)


def first_after(times: Iterable[float], fault_t_s: float) -> float | None:
    """Seconds from the fault to the first of `times` (drill seconds) after it; None if none."""
    after = [t for t in times if t >= fault_t_s]
    return min(after) - fault_t_s if after else None


def error_pct(samples: Sequence[DrillSample]) -> float:
    sent = sum(s.sent for s in samples)
    return 100.0 * sum(s.failed for s in samples) / sent if sent else 100.0
