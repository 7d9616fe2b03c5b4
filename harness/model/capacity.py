"""`harness capacity`'s plan: the steps of rate (open model) or users (closed model) and the one-run profile that
holds each for `hold_s` (pure; the run is harness/run/capacity.py, the per-step verdicts harness/gates/capacity.py).

    levels: start, start + step, … ≤ max
    open model:   every [arrival] class's rate × (level / the profile's total peak rate), so the total is the level
                  rate ▁▁▁▁/‾‾‾‾‾/‾‾‾‾‾/‾‾‾‾  each step: RAMP_S up from the previous level, then hold
    closed model: [[load.stages]] of `level` users each, at the profile's spawn rate
    evaluated:    each step from its start + max(settle, the users' ramp) to its end
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from harness.errors import ConfigError
from harness.model.profile import Arrival, Load, Profile, RateStage, Stage, SteadyStateConfig

Mode = Literal["rate", "users"]

RAMP_S = 1.0
"""Seconds each open-model step takes to ramp from the previous step's rate to its own."""
MAX_STEPS = 100
"""More steps than this is a typo in --step (a capacity run is one run)."""


@dataclass(frozen=True)
class CapacityPlan:
    mode: Mode
    levels: tuple[float, ...]
    """Total iterations/s (rate) or users per step."""
    hold_s: float
    settle_s: float

    @property
    def duration_s(self) -> float:
        return self.hold_s * len(self.levels)

    @property
    def unit(self) -> str:
        return "it/s" if self.mode == "rate" else "users"


def plan_levels(start: float, step: float, maximum: float, *, flags: tuple[str, str, str]) -> tuple[float, ...]:
    """start, start + step, … up to maximum (inclusive, within rounding)."""
    f_start, f_step, f_max = flags
    if maximum < start:
        raise ConfigError(f"{f_max}: {maximum:g} is below {f_start} {start:g}; give a maximum at least the start")
    count = math.floor((maximum - start) / step + 1e-9) + 1
    if count > MAX_STEPS:
        raise ConfigError(
            f"{f_step}: {step:g} makes {count} steps from {start:g} to {maximum:g} (at most {MAX_STEPS}); "
            "give a larger step"
        )
    return tuple(start + i * step for i in range(count))


def make_plan(profile: Profile, mode: Mode, levels: tuple[float, ...], hold_s: float, settle_s: float) -> CapacityPlan:
    if mode == "rate" and not profile.arrival:
        raise ConfigError(
            f"--start/--step/--max step the open model's rate, and profile {profile.name} has no [arrival] class; "
            "step users with --users-start/--users-step/--users-max, or add [arrival] (docs/profiles.md)"
        )
    if mode == "users" and not profile.scenarios.weights():
        raise ConfigError(
            f"--users-start/--users-step/--users-max step closed-model users, and profile {profile.name} weights no "
            "[scenarios] class; step its rate with --start/--step/--max"
        )
    if mode == "users" and any(not float(level).is_integer() or level < 1 for level in levels):
        raise ConfigError("--users-start/--users-step: users must be whole numbers of at least 1 (e.g. 100)")
    if hold_s < settle_s + profile.window_s:
        raise ConfigError(
            f"--hold: {hold_s:g} s leaves less than one window ({profile.window_s:g} s) after --settle "
            f"{settle_s:g} s; give --hold of at least {settle_s + profile.window_s:g} s"
        )
    return CapacityPlan(mode, levels, hold_s, settle_s)


def total_rate(profile: Profile) -> float:
    """The profile's total peak arrival rate (the level its own rates stand for)."""
    return sum(a.peak_rate for a in profile.arrival.values())


def stepped_profile(profile: Profile, plan: CapacityPlan, max_users: int | None = None) -> Profile:
    """The profile that runs every step in one run; its steady state is the whole run (steps are judged apart)."""
    spawn_rate = profile.load.as_stages()[0].spawn_rate
    update: dict[str, object] = {
        "steady_state": SteadyStateConfig(exclude_ramp=False, start_s=0.0, end_s=plan.duration_s),
        "name": f"{profile.name}-capacity",
    }
    if plan.mode == "rate":
        base = total_rate(profile)
        arrival = {}
        for name, a in profile.arrival.items():
            stages: list[RateStage] = []
            for level in plan.levels:
                rate = a.peak_rate * level / base
                stages += [
                    RateStage(duration_s=RAMP_S, rate=rate),
                    RateStage(duration_s=plan.hold_s - RAMP_S, rate=rate),
                ]
            arrival[name] = Arrival(stages=stages, max_users=max_users or a.max_users)
        closed = profile.load.peak_users
        update["arrival"] = arrival
        update["load"] = Load(users=closed or None, spawn_rate=spawn_rate, duration_s=plan.duration_s)
    else:
        stages_u = [Stage(duration_s=plan.hold_s, users=int(level), spawn_rate=spawn_rate) for level in plan.levels]
        update["load"] = Load(stages=stages_u)
    return profile.model_copy(update=update)


def step_spans(profile: Profile, plan: CapacityPlan) -> list[tuple[float, float]]:
    """(start, end) of each step's judged stretch in seconds from the run start: after the settle time, and after
    the users of the step (the pools too, at the first step) have been spawned."""
    spawn_rate = profile.load.as_stages()[0].spawn_rate
    spans, prev_users = [], 0.0
    for i, level in enumerate(plan.levels):
        users = level if plan.mode == "users" else float(profile.load.peak_users + profile.arrival_users)
        ramp_s = abs(users - prev_users) / spawn_rate
        start = i * plan.hold_s
        spans.append((start + max(plan.settle_s, ramp_s), start + plan.hold_s))
        prev_users = users
    return spans
