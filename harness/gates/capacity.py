"""`harness capacity`'s verdicts, pure: each step of the run judged by the profile's gates, and the sustainable level.

    result (one run, all steps) ─► per step: the windows inside its judged stretch, its CPU samples
        ─► evaluate() as if that stretch were a whole run ─► passed / failed / invalid (generator saturated…)
    steps in order ─► the last passed step before the first failed or invalid one = the sustainable level

`min_rps` is left out (the rate is what the steps set; the open model has its own `iterations[…].rate` gate), and
so are the smoke checks and the whole-run completeness check (a run stopped at a breaking step is still judged).
Exit codes: 0 a sustainable level was found, 1 the first step already failed a gate, 2 the first step was invalid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness.gates.verdict import GateResult, Status, evaluate, totals_excluded
from harness.model.capacity import CapacityPlan
from harness.model.profile import GatesConfig
from harness.model.result import Result, Span, SteadyState, arrival_totals

STEP_GATES_OFF = ("min_rps",)
"""Profile gates a capacity step does not apply."""
SKIPPED_CHECKS = ("valid.complete",)
"""Whole-run checks a step does not apply (a run stopped early at a breaking step is complete enough)."""


@dataclass(frozen=True)
class StepOutcome:
    index: int
    level: float
    start_s: float
    """Judged stretch, Unix seconds."""
    end_s: float
    status: Status
    rps: float | None = None
    p95_ms: float | None = None
    error_pct: float | None = None
    iterations_per_s: float | None = None
    """Open model: iterations started per second (all open classes)."""
    dropped_pct: float | None = None
    reasons: list[str] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)


@dataclass(frozen=True)
class CapacityVerdict:
    steps: list[StepOutcome]
    sustainable: StepOutcome | None
    """The last passed step before the first failed or invalid one (None: not even the first passed)."""
    breaking: StepOutcome | None
    """The first failed or invalid step (None: every step passed)."""

    @property
    def exit_code(self) -> int:
        if self.sustainable is not None:
            return 0
        return 1 if self.breaking is not None and self.breaking.status == "failed" else 2

    @property
    def stopped_by(self) -> str:
        b = self.breaking
        if b is None:
            return "every step passed" if self.steps else "no step was judged"
        if b.status == "invalid":
            return f"step {b.index + 1} was invalid: {'; '.join(b.reasons)}"
        return f"step {b.index + 1} failed: {'; '.join(b.reasons)}"


def step_config(cfg: GatesConfig) -> GatesConfig:
    return cfg.model_copy(update=dict.fromkeys(STEP_GATES_OFF))


def evaluate_step(result: Result, cfg: GatesConfig, index: int, level: float, span: tuple[float, float]) -> StepOutcome:
    """One step, judged over the windows wholly inside `span` (Unix seconds)."""
    start_s, end_s = span
    w = result.window_s
    first, last = math.ceil(start_s / w - 1e-9), math.floor(end_s / w + 1e-9)
    windows = [win for win in result.windows if first <= round(win.start_s / w) < last]
    run = result.run.model_copy(
        update={
            "started_s": start_s,
            "ended_s": end_s,
            "partial": False,
            "smoke_checks": [],
            "steady_state": SteadyState(start_s=start_s, end_s=end_s),
        }
    )
    cpu = [c for c in result.cpu if start_s <= c.t_s < end_s]
    part = result.model_copy(update={"run": run, "windows": windows, "cpu": cpu})
    step_cfg = step_config(cfg)
    verdict = evaluate(part, step_cfg)
    gates = [g for g in verdict.gates if g.name not in SKIPPED_CHECKS]
    statuses = {g.status for g in gates}
    status: Status = "invalid" if "invalid" in statuses else "failed" if "failed" in statuses else "passed"
    duration_s = max(0, last - first) * w
    total = Span.of(windows, duration_s).select(exclude_names=totals_excluded(step_cfg))
    its = arrival_totals(windows).values()
    started = sum(a.started for a in its)
    due = sum(a.due for a in its)
    return StepOutcome(
        index=index,
        level=level,
        start_s=start_s,
        end_s=end_s,
        status=status,
        rps=total.rps,
        p95_ms=total.sketch.quantile(0.95),
        error_pct=total.error_pct,
        iterations_per_s=started / duration_s if result.arrival and duration_s > 0 else None,
        dropped_pct=100.0 * (due - started) / due if due else None,
        reasons=[f"{g.name}: {g.reason}" for g in gates if g.status != "passed"],
        gates=gates,
    )


def evaluate_steps(
    result: Result, cfg: GatesConfig, plan: CapacityPlan, spans: list[tuple[float, float]], *, until_s: float | None
) -> list[StepOutcome]:
    """Every step whose stretch ended by `until_s` (Unix seconds; None: the run's end), in order. `spans` are in
    seconds from the run start (model.capacity.step_spans)."""
    t0 = result.run.started_s
    limit = result.run.ended_s if until_s is None else until_s
    out = []
    for i, (level, (a, b)) in enumerate(zip(plan.levels, spans, strict=True)):
        if t0 + b > limit:
            break
        out.append(evaluate_step(result, cfg, i, level, (t0 + a, t0 + b)))
    return out


def judge(steps: list[StepOutcome]) -> CapacityVerdict:
    sustainable = None
    for step in steps:
        if step.status != "passed":
            return CapacityVerdict(steps, sustainable, step)
        sustainable = step
    return CapacityVerdict(steps, sustainable, None)
