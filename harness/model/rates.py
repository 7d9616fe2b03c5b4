"""Arrival-rate schedules of the open model: iterations per second over time, and their integral (pure math).

    rate                               constant:  rate from t = 0, for ever
      │        ┌──────────              ramping:   straight lines between stage ends, from 0 at t = 0,
      │      ╱                                     then the last stage's rate for ever
      │    ╱                  count_at(t) = ∫₀ᵗ rate,  time_of(n) = the first t with count_at(t) ≥ n
      └──┴─────┴───────── t

The worker's scheduler (harness/loadgen/arrivals.py) starts iteration n at `time_of(n / share)`; the gates compare
iterations started with the same integral.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateSchedule:
    """A piecewise-linear rate through `points` (seconds from the start, iterations/s); the last rate holds after."""

    points: tuple[tuple[float, float], ...]

    @classmethod
    def constant(cls, rate: float) -> RateSchedule:
        return cls(((0.0, float(rate)),))

    @classmethod
    def ramping(cls, stages: Iterable[tuple[float, float]], start_rate: float = 0.0) -> RateSchedule:
        """(duration_s, rate) stages, each a straight line from the previous stage's rate (the first from
        `start_rate`) to its own."""
        t, points = 0.0, [(0.0, float(start_rate))]
        for duration_s, rate in stages:
            t += float(duration_s)
            points.append((t, float(rate)))
        return cls(tuple(points))

    def scaled(self, factor: float) -> RateSchedule:
        return RateSchedule(tuple((t, r * factor) for t, r in self.points))

    @property
    def peak(self) -> float:
        return max(r for _, r in self.points)

    def rate_at(self, t: float) -> float:
        if t <= self.points[0][0]:
            return self.points[0][1]
        for (ta, ra), (tb, rb) in zip(self.points, self.points[1:], strict=False):
            if t <= tb:
                return ra + (rb - ra) * (t - ta) / (tb - ta) if tb > ta else rb
        return self.points[-1][1]

    def count_at(self, t: float) -> float:
        """Iterations due from 0 to `t` (the integral of the rate)."""
        if t <= 0:
            return 0.0
        total = 0.0
        for (ta, ra), (tb, rb) in zip(self.points, self.points[1:], strict=False):
            if t <= ta:
                return total
            end = min(t, tb)
            r_end = ra + (rb - ra) * (end - ta) / (tb - ta) if tb > ta else rb
            total += (ra + r_end) / 2 * (end - ta)
            if t <= tb:
                return total
        t_last, r_last = self.points[-1]
        return total + r_last * (t - max(t_last, 0.0))

    def between(self, t0: float, t1: float) -> float:
        return self.count_at(t1) - self.count_at(t0) if t1 > t0 else 0.0

    def time_of(self, n: float) -> float | None:
        """The first time at which `n` iterations are due; None when the rate stays 0 before that."""
        if n <= 0:
            return 0.0
        done = 0.0
        for (ta, ra), (tb, rb) in zip(self.points, self.points[1:], strict=False):
            area = (ra + rb) / 2 * (tb - ta)
            if done + area >= n and tb > ta:
                return ta + _solve(ra, (rb - ra) / (tb - ta), n - done, tb - ta)
            done += area
        t_last, r_last = self.points[-1]
        if r_last <= 0:
            return None
        return t_last + (n - done) / r_last


def _solve(r0: float, slope: float, need: float, span: float) -> float:
    """The s in [0, span] with r0·s + slope·s²/2 = need (the area under a line starting at r0)."""
    if abs(slope) < 1e-12:
        return min(span, need / r0) if r0 > 0 else span
    disc = r0 * r0 + 2 * slope * need
    s = (-r0 + math.sqrt(max(disc, 0.0))) / slope
    return min(max(s, 0.0), span)
