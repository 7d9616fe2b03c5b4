"""`harness deploy gate`: apply a release, wait for it, gate it with profiles, roll it back when it is red.

    apply ──► wait ──► gate profile(s) ──► green: exit 0
                              │
                              └─ red/invalid ──► rollback ──► wait ──► smoke again ──► exit 1 (2 if that is not green)

The sequence, each step's command, duration, exit code and verdict go to deploy-gate.json and deploy-gate.md in
the gate's own reports folder; every run keeps its own reports beside them. A failing --apply stops at once (exit
2: nothing was deployed, so nothing is rolled back); a failing --wait is a red release (it never became ready) and
is rolled back. Commands run through `sh -c` with --step-timeout, their output streamed with a prefix; they
inherit the environment, so keep secrets there rather than on the command line (the command lines are logged).
Ctrl-C stops the current step and ends the gate without rolling back (exit 130): an interrupted gate proves
nothing, and rolling back is then the operator's decision.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from harness.errors import HarnessError
from harness.run.collect import RunOutcome


@dataclass
class Step:
    name: str
    """apply, wait, gate:<profile>, rollback, wait-after-rollback, smoke-after-rollback."""
    command: str
    started_unix_s: float
    duration_s: float
    exit_code: int
    detail: str = ""
    report: str = ""


@dataclass
class GatePlan:
    apply: str
    profiles: list[str]
    wait: str | None = None
    rollback: str | None = None
    after_rollback: str = "smoke"
    step_timeout_s: float = 900.0


@dataclass
class GateRecord:
    gate_id: str
    steps: list[Step] = field(default_factory=list)
    outcome: str = ""
    exit_code: int = 2


RunProfile = Callable[[str, str], RunOutcome]
"""(profile, run id) → the run's outcome (the orchestrator, with the gate's target options)."""


def run_command(name: str, command: str, timeout_s: float, log: TextIO) -> Step:
    """`sh -c COMMAND`, output streamed as `[name] line`; killed (its whole group) after `timeout_s`."""
    print(f"harness: deploy gate: {name}: {command}", file=log, flush=True)
    started, clock = time.time(), time.monotonic()
    proc = subprocess.Popen(
        ["sh", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    timer = threading.Timer(timeout_s, _kill_group, args=(proc,))
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(f"[{name}] {line.rstrip()}", file=log, flush=True)
        code = proc.wait()
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        timer.cancel()
    elapsed = time.monotonic() - clock
    timed_out = elapsed >= timeout_s and code != 0
    detail = f"timed out after {timeout_s:g} s" if timed_out else ("ok" if code == 0 else f"exit {code}")
    return Step(name, command, started, round(elapsed, 3), code, detail)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_gate(plan: GatePlan, record: GateRecord, run_profile: RunProfile, log: TextIO) -> GateRecord:
    """The whole sequence; `record` fills as it goes (the CLI writes it even when a Ctrl-C ends it early)."""
    apply = run_command("apply", plan.apply, plan.step_timeout_s, log)
    record.steps.append(apply)
    if apply.exit_code != 0:
        return _end(record, "apply failed: nothing deployed, nothing rolled back", 2)
    red = _wait_failed(plan, record, "wait", log) or not _gates_pass(plan, record, run_profile, log)
    if not red:
        return _end(record, "green: the release passed every gate", 0)
    if plan.rollback is None:
        return _end(record, "red: no --rollback given; the release stays deployed", 1)
    rollback = run_command("rollback", plan.rollback, plan.step_timeout_s, log)
    record.steps.append(rollback)
    if rollback.exit_code != 0:
        return _end(record, "red, and the rollback failed: act now", 2)
    if _wait_failed(plan, record, "wait-after-rollback", log):
        return _end(record, "red, rolled back, but the previous release did not become ready: act now", 2)
    step = _gate_run(f"smoke-after-rollback:{plan.after_rollback}", plan.after_rollback, record, run_profile, log)
    if step.exit_code != 0:
        return _end(record, "red, rolled back, but the previous release fails its smoke run: act now", 2)
    return _end(record, "red: caught and rolled back; the previous release passes its smoke run", 1)


def _wait_failed(plan: GatePlan, record: GateRecord, name: str, log: TextIO) -> bool:
    if plan.wait is None:
        return False
    step = run_command(name, plan.wait, plan.step_timeout_s, log)
    record.steps.append(step)
    return step.exit_code != 0


def _gates_pass(plan: GatePlan, record: GateRecord, run_profile: RunProfile, log: TextIO) -> bool:
    for profile in plan.profiles:
        if _gate_run(f"gate:{profile}", profile, record, run_profile, log).exit_code != 0:
            return False  # the first red profile decides; later ones would load a broken release for nothing
    return True


def _gate_run(name: str, profile: str, record: GateRecord, run_profile: RunProfile, log: TextIO) -> Step:
    print(f"harness: deploy gate: {name}", file=log, flush=True)
    started, clock = time.time(), time.monotonic()
    run_id = f"{record.gate_id}-{len(record.steps) + 1}-{Path(profile).stem}"
    try:
        outcome = run_profile(profile, run_id)
        code, report = outcome.exit_code, str(outcome.out_dir)
        reasons = "; ".join(outcome.verdict.reasons)[:300]
        detail = f"{outcome.verdict.status}: {reasons}" if reasons else str(outcome.verdict.status)
    except HarnessError as err:  # the target did not answer, a bad profile: not a green release
        code, detail, report = 2, f"invalid: {err}"[:400], ""
    step = Step(name, f"harness run {profile}", started, round(time.monotonic() - clock, 3), code, detail, report)
    record.steps.append(step)
    return step


def _end(record: GateRecord, outcome: str, code: int) -> GateRecord:
    record.outcome, record.exit_code = outcome, code
    return record


def write_record(record: GateRecord, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"gate_id": record.gate_id, "outcome": record.outcome, "exit_code": record.exit_code,
            "steps": [asdict(s) for s in record.steps]}  # fmt: skip
    json_path = out_dir / "deploy-gate.json"
    json_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"## harness deploy gate {record.gate_id}: {record.outcome} (exit {record.exit_code})",
        "",
        "| # | step | command | duration | exit | result | report |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, s in enumerate(record.steps, start=1):
        command = s.command.replace("|", "\\|")[:200]
        detail = s.detail.replace("|", "\\|")
        lines.append(f"| {i} | {s.name} | `{command}` | {s.duration_s:.1f} s | {s.exit_code} | {detail} | {s.report} |")
    md_path = out_dir / "deploy-gate.md"
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return json_path, md_path
