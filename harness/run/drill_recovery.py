"""`harness drill recovery`: the deployment guide's monthly recovery test as one command.

    baseline smoke ─► kill Singapore ─► the DR monitor fails over ─► smoke on the failed-over system
        ─► restart Singapore (a stale primary on its old data) ─► dr failback (rewind, planned switchover,
           traffic back) ─► smoke again

The writers of the failover drill run throughout, so the acknowledged messages are checked after both moves.
Each phase is timed and keeps every failed step with its error ("document any issues"); the recovery time is
fault → the failed-over system passes the smoke checklist (the guide's target: under 30 minutes).
Writes recovery.md beside the drill's other reports.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import httpx

from harness.dr.actions import Outcome
from harness.dr.failback import failback
from harness.gates import drill as figures
from harness.model.drill import DrillPhase, DrillResult, Measure
from harness.model.drill_profile import DrillProfile
from harness.refstack.stack import ReferenceStack
from harness.run.drill_measures import stored_ids
from harness.run.drill_rig import DrillOptions, DrillRig, open_rig
from harness.run.signals import StopRequest
from harness.run.smoke import run_checklist
from harness.run.target import from_reference

FAILBACK_STABLE_FOR_S = 5.0


class _Phases:
    def __init__(self, rig: DrillRig, result: DrillResult, log: TextIO) -> None:
        self.rig, self.result, self.log = rig, result, log

    def run(self, name: str, body: Callable[[DrillPhase], None]) -> DrillPhase:
        t = self.rig.recorder.now()
        phase = DrillPhase(name, round(t, 3), round(t, 3), ok=True)
        print(f"harness: drill recovery: {name}…", file=self.log, flush=True)
        self.rig.event("phase", f"{name} starts", t)
        try:
            body(phase)
        except Exception as exc:  # every failure of a phase is documented, and the next phases still run
            phase.errors.append(f"{type(exc).__name__}: {exc}")
        phase.ok = phase.ok and not phase.errors
        phase.ended_t_s = round(self.rig.recorder.now(), 3)
        self.result.phases.append(phase)
        verdict = "ok" if phase.ok else "FAILED: " + "; ".join(phase.errors)[:300]
        print(f"harness: drill recovery: {name} {verdict} ({phase.seconds:.1f} s)", file=self.log, flush=True)
        return phase


def _document(phase: DrillPhase, outcome: Outcome) -> None:
    """A DR action that failed adds each failed step and the reason to its phase."""
    if not outcome.ok:
        phase.errors.extend(f"{step.name}: {step.detail}" for step in outcome.steps if not step.ok)
        phase.errors.append(f"{outcome.action}: {outcome.error}")


SMOKE_SETTLE_S = 5.0
"""A smoke that fails right after a move is run once more after this pause: the first Realtime connect after a
failback sometimes times out (seen in about a third of the runs, at this drill's introduction too), and the monthly
test asks whether the service is back, not whether the very first socket made it. The first attempt's failures are
printed, so a retry never goes unseen."""


def _smoke(stack: ReferenceStack, log: TextIO, *, failed_over: bool = False) -> Callable[[DrillPhase], None]:
    """The smoke checklist through the edge. While failed over every viewer goes to Japan by design, so the China
    routing check (CN → Japan, everyone else → Singapore) is left out of that one."""

    def failures() -> list[str]:
        checks = run_checklist(from_reference(stack.endpoints), china=not failed_over)
        return [f"smoke {check.name}: {check.message}" for check in checks if not check.passed]

    def body(phase: DrillPhase) -> None:
        failed = failures()
        if failed:
            print(f"harness: drill recovery: {'; '.join(failed)[:300]}; once more in {SMOKE_SETTLE_S:g} s", file=log)
            time.sleep(SMOKE_SETTLE_S)
            failed = failures()
        phase.errors.extend(failed)

    return body


def run_recovery_drill(
    profile: DrillProfile, options: DrillOptions, log: TextIO = sys.stderr
) -> tuple[DrillResult, Path]:
    with StopRequest(log) as stop, contextlib.ExitStack() as cleanup:
        run_id, out_dir, rig = open_rig("recovery", profile, options, cleanup)
        stack = rig.stack
        result = DrillResult("recovery", "kill", run_id, time.time(), "reference stack",
                             profile.drill.synchronous_commit)  # fmt: skip
        rig.start(realtime=False)
        phases = _Phases(rig, result, log)
        monitor_stop = threading.Event()
        fault_t: float | None = None
        deadline_s = profile.drill.max_duration_s
        try:
            phases.run("baseline_smoke", _smoke(stack, log))

            def fault_and_failover(phase: DrillPhase) -> None:
                nonlocal fault_t
                thread = rig.start_monitor(profile, monitor_stop)
                time.sleep(2 * profile.monitor.interval_s)  # the monitor has seen a healthy primary
                stack.kill("primary")
                fault_t = rig.recorder.now()
                rig.event("fault", "kill -9 Singapore's region server and PostgreSQL", fault_t)
                waited = time.monotonic() + deadline_s
                while not rig.outcomes and time.monotonic() < waited and not stop.requested:
                    stop.wait(0.25)
                monitor_stop.set()
                thread.join(60)
                if not rig.outcomes:
                    raise TimeoutError(f"the DR monitor did not fail over within {deadline_s:g} s")
                _document(phase, rig.outcomes[-1])

            phases.run("fault_and_failover", fault_and_failover)
            after_failover = phases.run("smoke_after_failover", _smoke(stack, log, failed_over=True))

            def restart_home(phase: DrillPhase) -> None:
                stack.restart("primary")

            phases.run("restart_singapore", restart_home)

            def fail_back(phase: DrillPhase) -> None:
                _document(phase, failback(rig.ctx, stable_for_s=FAILBACK_STABLE_FOR_S))

            phases.run("failback", fail_back)
            phases.run("smoke_after_failback", _smoke(stack, log))
        finally:
            monitor_stop.set()
            rig.halt()
        try:
            stored, primary = stored_ids(rig)
            missing = sorted(set(rig.ledger.acked) - stored)
            rpo = Measure("rpo_messages", float(len(missing)), "messages", profile.gates.rpo_messages,
                          f"{len(missing)} of {len(rig.ledger.acked)} acknowledged messages missing on {primary} "
                          "after failover and failback")  # fmt: skip
        except (RuntimeError, httpx.HTTPError) as exc:
            rpo = Measure("rpo_messages", None, "messages", profile.gates.rpo_messages, f"not checked: {exc}")
        result.timeline = rig.recorder.samples()
        recovered = after_failover.ended_t_s if after_failover.ok and fault_t is not None else None
        by_name = {p.name: p for p in result.phases}
        result.measures = [
            Measure("recovery_s", None if recovered is None else round(recovered - (fault_t or 0), 3), "s",
                    profile.gates.recovery_s, "fault → the failed-over system passes the smoke checklist"),
            Measure("failover_s", by_name["fault_and_failover"].seconds if "fault_and_failover" in by_name else None,
                    "s", detail="kill → the monitor's failover verified a write"),
            Measure("failback_s", by_name["failback"].seconds if "failback" in by_name else None, "s",
                    detail="rewind, planned switchover and traffic back"),
            rpo,
            Measure("error_pct", round(figures.error_pct(result.timeline), 2), "%", None,
                    "failed requests over the whole drill (reported, not gated: the drill kills the primary)"),
            Measure("acknowledged", float(len(rig.ledger.acked)), "messages"),
        ]  # fmt: skip
        result.events = sorted(rig.events, key=lambda e: e.t_s)
        if stop.requested:
            result.errors.append(f"interrupted ({stop.signal_name}): the drill is incomplete")
    return result, out_dir
