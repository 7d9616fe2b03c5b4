"""`harness drill failover`: fault Singapore under load, let the DR monitor fail over, measure what users lived.

    reference stack (origin proxies, data dir in the report folder, sync or async replica)
      ─► writers + readers through the edge (ledger.py), realtime subscriber, lag sampler (drill_watch.py),
         set up by drill_rig.py
      ─► DR monitor thread (harness.dr.monitor: probes Singapore, fails over after N failed rounds)
      ─► at fault_at_s: the fault (drill_faults.py); meeting re-join attempts start
      ─► until the error rate has been under the gate for hold_s (or max_duration_s)
      ─► stop everything ─► RPO: acknowledged ids missing on the new primary ─► measures (drill_measures.py)
      ─► reports/<run-id>/: drill.json, timeline.png, junit.xml, summary.md, report.html

Every thread stops on its own (an Event, bounded joins); Ctrl-C stops the drill early and still reports it (as
invalid). Exit code: 0 every gate passed, 1 a gate failed, 2 the drill could not run.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import httpx

from harness.dr.monitor import MonitorSettings, monitor
from harness.gates import drill as figures
from harness.model.drill import DrillResult
from harness.model.drill_profile import DrillProfile
from harness.refstack.stack import ReferenceStack
from harness.run import drill_faults, drill_measures
from harness.run.drill_rig import DrillRig, build_rig, new_run_id, stack_config
from harness.run.signals import StopRequest

PROGRESS_EVERY_S = 5.0


@dataclass
class DrillOptions:
    reports_dir: Path = Path("reports")
    run_id: str | None = None
    promote_cmd: str | None = None
    """Promote another way (or deliberately not at all: `false` breaks the DR, and the drill must fail)."""


def _progress(rig: DrillRig, log: TextIO, fault_t: float | None) -> None:
    samples = rig.recorder.samples()
    last = samples[-2] if len(samples) > 1 else (samples[-1] if samples else None)
    rate = f"{last.sent} req/s, {last.error_pct:.0f}% errors" if last else "no requests yet"
    phase = "before the fault" if fault_t is None else f"{rig.recorder.now() - fault_t:.0f} s after the fault"
    print(
        f"harness: drill t={rig.recorder.now():.0f}s ({phase}): {rate}, {len(rig.ledger.acked)} messages acknowledged",
        file=log,
        flush=True,
    )


def _settled(rig: DrillRig, fault_t: float) -> bool:
    """Users are back in every way the drill watches: a meeting joined, realtime delivering new messages."""
    return rig.meeting.joined_at is not None and drill_measures.realtime_back(rig, fault_t) is not None


def drive(
    rig: DrillRig, profile: DrillProfile, stop: StopRequest, log: TextIO, fault: Callable[[], str]
) -> float | None:
    """Run load, monitor and fault until recovered and held (or the time limit); returns the fault's drill second."""
    settings = profile.drill
    monitor_stop = threading.Event()
    rig.recorder.t0 = time.monotonic()
    rig.t0_unix = time.time()
    rig.ledger.start()
    rig.realtime.start()
    rig.lag.start()
    mon = profile.monitor
    bounded = int(settings.max_duration_s / mon.interval_s) + 10
    monitor_thread = threading.Thread(
        target=monitor,
        name="dr-monitor",
        daemon=True,
        args=(rig.ctx, MonitorSettings(interval_s=mon.interval_s, failures=mon.failures, max_rounds=bounded)),
        kwargs={"stop": monitor_stop, "on_action": rig.outcomes.append},
    )
    monitor_thread.start()
    fault_t: float | None = None
    next_progress = 0.0
    try:
        while not stop.requested and rig.recorder.now() < settings.max_duration_s:
            now = rig.recorder.now()
            if fault_t is None and now >= settings.fault_at_s:
                fault_t = rig.recorder.now()
                label = fault()
                rig.event("fault", label, fault_t)
                print(f"harness: drill t={fault_t:.1f}s: FAULT: {label}", file=log, flush=True)
                rig.meeting.start()
            if fault_t is not None:
                recovered = figures.recovered_at(
                    rig.recorder.samples(), fault_t, settings.hold_s, profile.gates.error_pct
                )
                if recovered is not None and now >= recovered + settings.hold_s + 1 and _settled(rig, fault_t):
                    break
            if now >= next_progress:
                _progress(rig, log, fault_t)
                next_progress = now + PROGRESS_EVERY_S
            stop.wait(0.25)
    finally:
        monitor_stop.set()
        rig.ledger.halt()
        rig.realtime.halt()
        rig.meeting.halt()
        rig.lag.halt()
        monitor_thread.join(60)
    return fault_t


def run_failover_drill(
    profile: DrillProfile, options: DrillOptions, log: TextIO = sys.stderr
) -> tuple[DrillResult, Path]:
    run_id = options.run_id or new_run_id("failover")
    out_dir = options.reports_dir / run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = profile.drill
    result = DrillResult(
        "failover", settings.fault, run_id, time.time(), "reference stack", settings.synchronous_commit
    )
    print(
        f"harness: drill {run_id}: fault {settings.fault} at {settings.fault_at_s:g} s, "
        f"{'synchronous' if settings.synchronous_commit else 'asynchronous'} replica, reports in {out_dir}",
        file=log,
    )
    with StopRequest(log) as stop, contextlib.ExitStack() as cleanup:
        stack = ReferenceStack(stack_config(profile, out_dir))
        cleanup.callback(stack.stop)
        stack.start()
        rig = build_rig(stack, profile, run_id, out_dir, options.promote_cmd, cleanup)
        print(f"harness: drill: stack up, {len(rig.ledger.writers)} writers provisioned; load starts", file=log)
        fault_t = drive(
            rig, profile, stop, log, lambda: drill_faults.inject(stack, settings.fault, settings.slow_latency_ms)
        )
        lag_at_fault = max(
            (ms for t, ms in rig.recorder.lag_ms.items() if fault_t is not None and t <= fault_t and t >= fault_t - 2),
            default=None,
        )
        try:
            stored, primary = drill_measures.stored_ids(rig)
            rig.event("note", f"acknowledged messages checked on {primary}")
        except (RuntimeError, httpx.HTTPError) as exc:
            stored = None
            rig.event("note", f"could not read the messages back: {exc}")
        result.timeline = rig.recorder.samples()
        result.measures = drill_measures.measures(rig, profile, fault_t, lag_at_fault, stored)
        rto = result.measure("rto_s")
        if fault_t is not None and rto is not None and rto.value is not None:
            rig.event(
                "recovered", f"errors under {profile.gates.error_pct:g}% for {settings.hold_s:g} s", fault_t + rto.value
            )
        result.events = sorted(rig.events, key=lambda e: e.t_s)
        if fault_t is None:
            result.errors.append("the drill ended before the fault was injected")
        if stop.requested:
            result.errors.append(f"interrupted ({stop.signal_name}): the drill is incomplete")
        if not rig.ledger.acked:
            result.errors.append("no write was acknowledged: there was no load to measure")
    return result, out_dir
