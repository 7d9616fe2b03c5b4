"""RTO and first-after figures from a drill's per-second timeline (gates/drill.py)."""

from __future__ import annotations

from harness.gates.drill import error_pct, first_after, recovered_at, rto_s
from harness.model.drill import DrillSample


def _timeline(failed_seconds: set[int], length: int = 30, empty: frozenset[int] = frozenset()) -> list[DrillSample]:
    return [DrillSample(t, 0 if t in empty else 100, 0 if t in empty else (100 if t in failed_seconds else 1), 10.0)
            for t in range(length)]  # fmt: skip


def test_rto_ends_where_errors_stay_under_the_gate_for_the_hold() -> None:
    samples = _timeline({10, 11, 12, 13, 14})
    assert recovered_at(samples, fault_t_s=10.4, hold_s=5, error_pct=5) == 15
    assert rto_s(samples, fault_t_s=10.4, hold_s=5, error_pct=5) == 15 - 10.4


def test_a_relapse_inside_the_hold_moves_the_end() -> None:
    samples = _timeline({10, 11, 14})
    assert recovered_at(samples, 10, hold_s=5, error_pct=5) == 15


def test_seconds_without_requests_are_not_recovered() -> None:
    samples = _timeline({10}, empty=frozenset({11, 12}))
    assert recovered_at(samples, 10, hold_s=3, error_pct=5) == 13


def test_never_recovered_within_the_drill_is_none() -> None:
    samples = _timeline(set(range(10, 28)))
    assert rto_s(samples, 10, hold_s=5, error_pct=5) is None
    assert rto_s([], 10, hold_s=5, error_pct=5) is None


def test_a_fault_users_never_noticed_has_rto_zero() -> None:
    assert rto_s(_timeline(set()), 10.7, hold_s=5, error_pct=5) == 0.0


def test_first_after_and_error_pct() -> None:
    assert first_after([1.0, 9.5, 12.0, 15.0], 10.0) == 2.0
    assert first_after([1.0], 10.0) is None
    assert error_pct(_timeline({0}, length=2)) == 100 * 101 / 200
    assert error_pct([]) == 100.0
