"""Arrival-rate schedules: the integral and its inverse, which the worker's scheduler and the gates share."""

from __future__ import annotations

import pytest

from harness.model.rates import RateSchedule


def test_a_constant_rate_is_due_linearly_and_its_inverse_matches() -> None:
    s = RateSchedule.constant(40)
    assert s.count_at(0) == 0 and s.count_at(2.5) == pytest.approx(100)
    assert s.time_of(100) == pytest.approx(2.5)
    assert s.between(1, 3) == pytest.approx(80)
    assert s.scaled(0.5).count_at(10) == pytest.approx(200)


def test_ramping_stages_are_straight_lines_from_the_previous_rate_then_hold() -> None:
    s = RateSchedule.ramping([(10, 100), (30, 100), (10, 0)])
    assert s.rate_at(5) == pytest.approx(50) and s.rate_at(45) == pytest.approx(50)
    assert s.count_at(10) == pytest.approx(500)  # the triangle 0 → 100 over 10 s
    assert s.count_at(40) == pytest.approx(3500)
    assert s.count_at(60) == pytest.approx(4000)  # the last rate (0) holds after the stages
    assert s.time_of(125) == pytest.approx(5)  # inside the ramp: 100/10 · t²/2 = 125 → t = 5
    assert s.time_of(4000) == pytest.approx(50)
    assert s.time_of(4001) is None  # never due: the rate stays 0
    assert s.peak == 100


@pytest.mark.parametrize("n", [1, 7, 333, 2000, 3999.5])
def test_time_of_inverts_count_at(n: float) -> None:
    s = RateSchedule.ramping([(3, 20), (5, 400), (7, 400), (2, 50)])
    t = s.time_of(n)
    assert t is not None and s.count_at(t) == pytest.approx(n, abs=1e-6)
