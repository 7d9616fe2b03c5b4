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
from pathlib import Path
from typing import TextIO

import httpx

from harness.gates import drill as figures
from harness.model.drill import DrillResult
from harness.model.drill_profile import DrillProfile
from harness.run import drill_faults, drill_measures
from harness.run.drill_rig import DrillOptions, DrillRig, open_rig
from harness.run.signals import StopRequest

PROGRESS_EVERY_S = 5.0


def _progress(rig: DrillRig, log: TextIO, fault_t: float | None) -> None:
    samples = rig.recorder.samples(with_p95=False)
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
    rig.start(realtime=True)
    monitor_thread = rig.start_monitor(profile, monitor_stop)
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
                    rig.recorder.samples(with_p95=False), fault_t, settings.hold_s, profile.gates.error_pct
                )
                if recovered is not None and now >= recovered + settings.hold_s + 1 and _settled(rig, fault_t):
                    break
            if now >= next_progress:
                _progress(rig, log, fault_t)
                next_progress = now + PROGRESS_EVERY_S
            stop.wait(0.25)
    finally:
        monitor_stop.set()
        rig.halt()
        monitor_thread.join(60)
    return fault_t


def run_failover_drill(
    profile: DrillProfile, options: DrillOptions, log: TextIO = sys.stderr
) -> tuple[DrillResult, Path]:
    settings = profile.drill
    commit = "synchronous" if settings.synchronous_commit else "asynchronous"
    print(f"harness: drill: fault {settings.fault} at {settings.fault_at_s:g} s, {commit} replica", file=log)
    with StopRequest(log) as stop, contextlib.ExitStack() as cleanup:
        run_id, out_dir, rig = open_rig("failover", profile, options, cleanup)
        result = DrillResult("failover", settings.fault, run_id, time.time(), "reference stack",
                             settings.synchronous_commit)  # fmt: skip
        print(f"harness: drill {run_id}: stack up, {len(rig.ledger.writers)} writers provisioned; load starts; "
              f"reports in {out_dir}", file=log)  # fmt: skip
        fault_t = drive(
            rig, profile, stop, log, lambda: drill_faults.inject(rig.stack, settings.fault, settings.slow_latency_ms)
        )
        lag_at_fault = drill_measures.lag_before(rig, fault_t)
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
