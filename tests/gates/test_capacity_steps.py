"""`harness capacity`'s pure parts: the plan and stepped profile, per-step verdicts from windows, the exit codes."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.gates.capacity import evaluate_steps, judge
from harness.model.capacity import make_plan, plan_levels, step_spans, stepped_profile
from harness.model.profile import parse_profile
from harness.model.result import ResultBuilder, RunInfo

OPEN = """window_s = 1
[load]
duration_s = 10
spawn_rate = 100
[arrival.A]
rate = 30
max_users = 20
[arrival.B]
rate = 10
max_users = 10
[gates]
min_rps = 100000
p95_ms = 100
"""
CLOSED = "window_s = 1\n[load]\nusers = 5\nspawn_rate = 10\nduration_s = 10\n[scenarios]\nWebUser = 1\n"
FLAGS = ("--start", "--step", "--max")
T0 = 10_000.0


def test_rate_steps_scale_every_open_class_so_the_total_is_the_level() -> None:
    base = parse_profile(OPEN, "open.toml")
    plan = make_plan(base, "rate", plan_levels(100, 100, 300, flags=FLAGS), hold_s=10, settle_s=3)
    assert plan.levels == (100, 200, 300)
    stepped = stepped_profile(base, plan)
    a, b = stepped.arrival["A"].schedule(), stepped.arrival["B"].schedule()
    assert a.rate_at(5) + b.rate_at(5) == pytest.approx(100)  # A keeps 3/4 of the total, B 1/4
    assert a.rate_at(25) == pytest.approx(225) and b.rate_at(25) == pytest.approx(75)
    assert stepped.load.total_duration_s == 30 and stepped.arrival["A"].max_users == 20
    assert stepped_profile(base, plan, max_users=99).arrival["B"].max_users == 99
    assert step_spans(stepped, plan) == [(3, 10), (13, 20), (23, 30)]


def test_user_steps_are_load_stages_and_the_ramp_is_left_out_when_longer_than_the_settle_time() -> None:
    base = parse_profile(CLOSED, "closed.toml")
    plan = make_plan(base, "users", plan_levels(20, 40, 60, flags=FLAGS), hold_s=10, settle_s=1)
    stepped = stepped_profile(base, plan)
    assert [(s.users, s.duration_s) for s in stepped.load.as_stages()] == [(20, 10), (60, 10)]
    assert step_spans(stepped, plan) == [(2, 10), (14, 20)]  # 20 then 40 more users at 10/s


@pytest.mark.parametrize(
    ("mode", "text", "hold_s", "message"),
    [
        ("rate", CLOSED, 10, "has no [arrival] class"),
        ("users", OPEN, 10, "weights no [scenarios] class"),
        ("rate", OPEN, 3, "--hold: 3 s leaves less than one window"),
    ],
)
def test_a_plan_the_profile_cannot_run_is_refused(mode: str, text: str, hold_s: float, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_plan(parse_profile(text, "p.toml"), mode, (10.0,), hold_s=hold_s, settle_s=3)  # type: ignore[arg-type]
    assert message in str(err.value)


def test_too_many_steps_or_a_max_below_the_start_are_refused() -> None:
    with pytest.raises(ConfigError, match="--max: 5 is below --start 10"):
        plan_levels(10, 1, 5, flags=FLAGS)
    with pytest.raises(ConfigError, match="--step: 1 makes 1000 steps"):
        plan_levels(1, 1, 1000, flags=FLAGS)


def _result(p95_by_step: list[float], cpu_by_step: list[float]):  # type: ignore[no-untyped-def]
    """Three 10 s steps at 100/200/300 it/s; each request takes the step's latency."""
    b = ResultBuilder(window_s=1.0, worker="w1")
    for step, (ms, cpu) in enumerate(zip(p95_by_step, cpu_by_step, strict=True)):
        rate = 100 * (step + 1)
        for s in range(10):
            t = T0 + step * 10 + s + 0.5
            for _ in range(rate):
                b.record("work", "GET", "baseline", ms, True, t)
            b.record_arrival(t, "A", target=rate * 0.75, started=int(rate * 0.75))
            b.record_arrival(t, "B", target=rate * 0.25, started=int(rate * 0.25))
            b.record_cpu(t, cpu)
    run = RunInfo(run_id="r", profile="p", started_s=T0, ended_s=T0 + 10 * len(p95_by_step), target="t",
                  workers_expected=1, workers_seen=1, partial=True)  # fmt: skip
    base = parse_profile(OPEN, "open.toml")
    plan = make_plan(base, "rate", (100.0, 200.0, 300.0)[: len(p95_by_step)], hold_s=10, settle_s=3)
    profile = stepped_profile(base, plan)
    result = b.build(run, profile.gates).model_copy(update={"arrival": profile.arrival})
    return result, profile, plan


def test_the_last_passing_step_before_a_gate_breaks_is_sustainable() -> None:
    result, profile, plan = _result([20, 40, 400], [10, 10, 10])
    steps = evaluate_steps(result, profile.gates, plan, step_spans(profile, plan), until_s=None)
    verdict = judge(steps)
    assert [s.status for s in steps] == ["passed", "passed", "failed"]  # min_rps 100000 left out; a partial run
    assert verdict.sustainable is steps[1] and verdict.breaking is steps[2] and verdict.exit_code == 0
    assert steps[1].p95_ms == pytest.approx(40, rel=0.01) and steps[1].error_pct == 0
    assert steps[1].iterations_per_s == pytest.approx(200) and steps[1].rps == pytest.approx(200)
    assert any(r.startswith("p95: ") for r in steps[2].reasons)


def test_steps_not_yet_reported_are_not_judged() -> None:
    result, profile, plan = _result([20, 40, 400], [10, 10, 10])
    steps = evaluate_steps(result, profile.gates, plan, step_spans(profile, plan), until_s=T0 + 25)
    assert [s.index for s in steps] == [0, 1]


def test_a_saturated_generator_makes_the_step_invalid_not_a_target_failure() -> None:
    result, profile, plan = _result([20, 40, 40], [10, 99, 10])
    verdict = judge(evaluate_steps(result, profile.gates, plan, step_spans(profile, plan), until_s=None))
    assert verdict.breaking is not None and verdict.breaking.status == "invalid"
    assert any(r.startswith("valid.cpu") for r in verdict.breaking.reasons)
    assert verdict.sustainable is not None and verdict.sustainable.level == 100 and verdict.exit_code == 0


def test_exit_1_when_the_first_step_fails_and_2_when_it_is_invalid() -> None:
    result, profile, plan = _result([400], [10])
    assert judge(evaluate_steps(result, profile.gates, plan, step_spans(profile, plan), until_s=None)).exit_code == 1
    result, profile, plan = _result([20], [99])
    assert judge(evaluate_steps(result, profile.gates, plan, step_spans(profile, plan), until_s=None)).exit_code == 2
    assert judge([]).exit_code == 2
