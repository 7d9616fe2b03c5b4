"""`harness capacity`: step the rate (open model) or the users (closed model) up in one run until a gate breaks or
the generator saturates, and report the last passing step as the sustainable level.

    profile ─► plan (model/capacity.py) ─► stepped profile ─► orchestrator.run(profile=…, monitor=judge_so_far)
        while it runs: every second, the master's snapshot.json ─► the steps that have ended (and been reported)
                       ─► gates/capacity.py ─► a failed or invalid step stops the run (cleanly, like Ctrl-C)
        after:         result.json ─► every ended step judged ─► sustainable level, knee
                       ─► capacity.json, capacity.md, capacity.svg, capacity.html beside the run's own report

Exit codes: 0 a sustainable level was found, 1 the first step failed a gate, 2 the first step was invalid (or error).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from harness.errors import ConfigError
from harness.gates.capacity import CapacityVerdict, evaluate_steps, judge
from harness.gates.verdict import fmt
from harness.loadgen import env as hs
from harness.model.capacity import CapacityPlan, Mode, make_plan, step_spans, stepped_profile
from harness.model.profile import Profile, load_profile, resolve_profile
from harness.model.result import Result, load_result
from harness.report import capacity as capacity_report
from harness.run.options import RunOptions
from harness.run.orchestrator import run

SNAPSHOT_S = 1.0
"""How often the master writes snapshot.json during a capacity run."""
REPORT_LAG_S = 4.5
"""Workers report every 3 s: a step is judged once the snapshot is this much past its end."""


@dataclass
class CapacityOptions:
    run: RunOptions
    mode: Mode
    levels: tuple[float, ...]
    hold_s: float = 30.0
    settle_s: float = 10.0
    max_users: int | None = None
    """Open model: every class's pool (default: each class's max_users)."""


class StepJudge:
    """The run's monitor: judges the steps that have ended in the master's snapshot; a reason to stop at the first
    failed or invalid one."""

    def __init__(self, profile: Profile, plan: CapacityPlan, spans: list[tuple[float, float]], log: TextIO) -> None:
        self.profile = profile
        self.plan = plan
        self.spans = spans
        self.log = log
        self.judged = 0

    def __call__(self, out_dir: Path) -> str | None:
        snapshot = _read(out_dir / hs.SNAPSHOT_FILE)
        if snapshot is None:
            return None
        steps = evaluate_steps(
            snapshot, self.profile.gates, self.plan, self.spans, until_s=snapshot.run.ended_s - REPORT_LAG_S
        )
        for step in steps[self.judged :]:
            print(
                f"harness: capacity step {step.index + 1} at {fmt(step.level, self.plan.unit)}: {step.status} "
                f"(rps {fmt(step.rps)}, p95 {fmt(step.p95_ms, 'ms')}, errors {fmt(step.error_pct, '%')})",
                file=self.log,
                flush=True,
            )
        self.judged = max(self.judged, len(steps))
        breaking = judge(steps).breaking
        if breaking is None:
            return None
        return f"capacity step {breaking.index + 1} at {fmt(breaking.level, self.plan.unit)} {breaking.status}"


def _read(path: Path) -> Result | None:
    try:
        return load_result(path)
    except ConfigError:  # not written yet, or being replaced
        return None


def run_capacity(options: CapacityOptions, log: TextIO = sys.stderr) -> int:
    source = resolve_profile(options.run.profile)
    base = load_profile(source)
    plan = make_plan(base, options.mode, options.levels, options.hold_s, options.settle_s)
    if options.max_users is not None and options.mode != "rate":
        raise ConfigError("--max-users sizes the open model's pools; it applies with --start/--step/--max only")
    profile = stepped_profile(base, plan, options.max_users)
    spans = step_spans(profile, plan)
    print(
        f"harness: capacity of {base.name}: {len(plan.levels)} step(s) of {plan.hold_s:g} s from "
        f"{fmt(plan.levels[0], plan.unit)} to {fmt(plan.levels[-1], plan.unit)}",
        file=log,
    )
    judge_steps = StepJudge(profile, plan, spans, log)
    run_options = replace(options.run, snapshot_s=SNAPSHOT_S)
    outcome = run(run_options, log, profile=profile, monitor=judge_steps)
    verdict = judge(evaluate_steps(outcome.result, profile.gates, plan, spans, until_s=None))
    paths = capacity_report.write(outcome.out_dir, verdict, plan, base.name)
    _print(verdict, plan, log, paths["md"])
    return outcome.signal_exit if outcome.signal_exit is not None else verdict.exit_code


def _print(verdict: CapacityVerdict, plan: CapacityPlan, log: TextIO, md: Path) -> None:
    sys.stdout.write(f"capacity: {capacity_report.headline(verdict, plan)}\n")
    print(f"harness: capacity report in {md}", file=log)
