"""`harness drill failover`: fault Singapore under load, let the DR monitor fail over, measure what users lived.

    reference stack (origin proxies, data dir in the report folder, sync or async replica)
      ─► writers + readers through the edge (ledger.py), realtime subscriber, lag sampler (drill_watch.py)
      ─► DR monitor thread (harness.dr.monitor: probes Singapore, fails over after N failed rounds)
      ─► at fault_at_s: the fault (drill_faults.py); meeting re-join attempts start
      ─► until the error rate has been under the gate for hold_s (or max_duration_s)
      ─► stop everything ─► RPO: acknowledged ids missing on the new primary ─► measures and gates
      ─► reports/<run-id>/: drill.json, timeline.png, junit.xml, summary.md, report.html

Every thread stops on its own (an Event, bounded joins); Ctrl-C stops the drill early and still reports it (as
invalid). Exit code: 0 every gate passed, 1 a gate failed, 2 the drill could not run.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from harness.clients.supabase.sync import SupabaseClient
from harness.dr.actions import DrContext, Outcome
from harness.dr.edge import EdgeSwitch
from harness.dr.journal import Journal
from harness.dr.monitor import MonitorSettings, monitor
from harness.dr.topology import JAPAN, SINGAPORE, Region, Topology
from harness.gates import drill as figures
from harness.model import keys
from harness.model.drill import DrillEvent, DrillResult, Measure
from harness.model.drill_profile import DrillProfile
from harness.model.target_config import Secret
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts
from harness.run import drill_faults
from harness.run.drill_watch import LagWatch, MeetingWatch, RealtimeWatch
from harness.run.ledger import Ledger, Recorder
from harness.run.signals import StopRequest

PROGRESS_EVERY_S = 5.0


@dataclass
class DrillOptions:
    reports_dir: Path = Path("reports")
    run_id: str | None = None
    promote_cmd: str | None = None
    """Promote another way (or deliberately not at all: `false` breaks the DR, and the drill must fail)."""
    keep_stack: bool = False


@dataclass
class DrillRig:
    """A running reference stack with the load, the watchers and the DR context on it."""

    stack: ReferenceStack
    topology: Topology
    ctx: DrContext
    ledger: Ledger
    recorder: Recorder
    realtime: RealtimeWatch
    meeting: MeetingWatch
    lag: LagWatch
    t0_unix: float = 0.0
    events: list[DrillEvent] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def t_of(self, unix_s: float) -> float:
        return unix_s - self.t0_unix

    def event(self, kind: Any, label: str, t: float | None = None) -> None:
        self.events.append(DrillEvent(round(self.recorder.now() if t is None else t, 3), kind, label))


def stack_config(profile: DrillProfile, out_dir: Path) -> StackConfig:
    return StackConfig(
        ports=StackPorts.any(),
        data_dir=out_dir / "stack",
        log_dir=out_dir / "stack",
        origin_proxies=True,
        synchronous_replica=profile.drill.synchronous_commit,
        replication_lag_ms=profile.drill.replication_lag_ms,
        health_interval_s=0.5,
    )


def build_rig(
    stack: ReferenceStack,
    profile: DrillProfile,
    run_id: str,
    out_dir: Path,
    promote_cmd: str | None,
    cleanup: contextlib.ExitStack,
) -> DrillRig:
    e = stack.endpoints
    # Singapore is probed and managed through its origin proxy: a partition cuts the monitor off like the edge.
    topology = Topology(
        home=Region(SINGAPORE, e.origin_url("primary")),
        standby=Region(JAPAN, e.replica_url),
        public_url=e.edge_url,
        service_key=Secret(keys.SERVICE_ROLE_KEY),
        anon_key=Secret(keys.ANON_KEY),
        timeout_s=profile.monitor.timeout_s,
    )
    journal = Journal(out_dir / "dr", out=None)
    ctx = DrContext(topology, journal, switches=[EdgeSwitch(topology)], promote_cmd=promote_cmd, verify_timeout_s=30.0)
    load = profile.load
    client = SupabaseClient(
        e.edge_url, keys.ANON_KEY, timeout_s=load.request_timeout_s, max_connections=load.writers + load.readers + 8
    )
    service = SupabaseClient(e.edge_url, keys.SERVICE_ROLE_KEY, timeout_s=30)
    cleanup.callback(client.close)
    cleanup.callback(service.close)
    recorder = Recorder(time.monotonic())
    ledger = Ledger(
        client,
        service,
        recorder,
        run_id,
        load.writers,
        load.readers,
        load.write_interval_ms / 1000,
        load.read_interval_ms / 1000,
    )
    ledger.provision()
    realtime_client = SupabaseClient(e.edge_url, keys.ANON_KEY, timeout_s=load.request_timeout_s)
    meeting_client = SupabaseClient(e.edge_url, keys.ANON_KEY, timeout_s=load.request_timeout_s)
    cleanup.callback(realtime_client.close)
    cleanup.callback(meeting_client.close)
    writer0 = ledger.writers[0]

    def acked_recently() -> bool:
        return bool(ledger.write_successes) and recorder.now() - ledger.write_successes[-1] < 2.0

    failed_over = threading.Event()

    def lag_urls() -> list[str]:
        order = [topology.standby, topology.home] if failed_over.is_set() else [topology.home, topology.standby]
        return [r.url for r in order]

    rig = DrillRig(
        stack,
        topology,
        ctx,
        ledger,
        recorder,
        realtime=RealtimeWatch(realtime_client, writer0, recorder, acked_recently),
        meeting=MeetingWatch(meeting_client, writer0, recorder),
        lag=LagWatch(lag_urls, recorder),
    )

    def on_entry(entry: dict[str, Any]) -> None:
        t = rig.t_of(float(entry["unix_s"]))
        if entry["event"] == "monitor" and entry.get("step") == "decision":
            rig.event("decision", f"monitor: {entry.get('consecutive_failures')} failed rounds → failover", t)
        elif entry["event"] in ("failover", "failback") and entry.get("step") not in (None, "start", "end"):
            verdict = "" if entry.get("ok") else " FAILED"
            rig.event("action", f"{entry['event']} {entry['step']}{verdict} ({entry.get('seconds', 0):.2f} s)", t)
            if entry["step"] == "promote" and entry.get("ok"):
                failed_over.set()

    journal.listeners.append(on_entry)
    return rig


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


def _new_primary_t(rig: DrillRig, fault_t: float) -> float:
    """From when writes go to the new primary: the promotion, or the fault when none was needed."""
    promoted = [e.t_s for e in rig.events if e.kind == "action" and e.label.startswith("failover promote")]
    return promoted[0] if promoted else fault_t


def _realtime_back(rig: DrillRig, fault_t: float) -> float | None:
    return rig.realtime.back_after(rig.ledger.acked, _new_primary_t(rig, fault_t))


def _settled(rig: DrillRig, fault_t: float) -> bool:
    """Users are back in every way the drill watches: a meeting joined, realtime delivering new messages."""
    return rig.meeting.joined_at is not None and _realtime_back(rig, fault_t) is not None


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


def stored_ids(rig: DrillRig) -> tuple[set[str], str]:
    """Client ids of this drill's messages on whichever region is primary now (its name)."""
    status = {r.name: rig.ctx.admin.status(r) for r in (rig.topology.standby, rig.topology.home)}
    primary = next(
        (
            r
            for r in (rig.topology.standby, rig.topology.home)
            if status[r.name].reachable and status[r.name].role == "primary"
        ),
        None,
    )
    if primary is None:
        raise RuntimeError("no region answers as primary: the acknowledged messages cannot be checked")
    base = rig.stack.endpoints.replica_url if primary == rig.topology.standby else rig.topology.home.url
    key = keys.SERVICE_ROLE_KEY
    ids: set[str] = set()
    with httpx.Client(timeout=60, headers={"apikey": key, "Authorization": f"Bearer {key}"}) as http:
        for w in rig.ledger.writers:
            resp = http.get(
                f"{base}/rest/v1/messages", params={"select": "client_msg_id", "sender_id": f"eq.{w.user_id}"}
            )
            resp.raise_for_status()
            ids.update(str(row["client_msg_id"]) for row in resp.json())
    return ids, primary.name


def measures(
    rig: DrillRig, profile: DrillProfile, fault_t: float | None, lag_at_fault_ms: float | None, stored: set[str] | None
) -> list[Measure]:
    gates, samples = profile.gates, rig.recorder.samples()
    out: list[Measure] = []

    def after_fault(t: float | None) -> float | None:
        return None if t is None or fault_t is None else round(t - fault_t, 3)

    decision = next((e.t_s for e in rig.events if e.kind == "decision"), None)
    promote = next(
        (
            e.t_s
            for e in rig.events
            if e.kind == "action" and e.label.startswith("failover promote") and "FAILED" not in e.label
        ),
        None,
    )
    out.append(Measure("detect_s", after_fault(decision), "s", detail="fault → the monitor decides to fail over"))
    out.append(Measure("promote_s", after_fault(promote), "s", detail="fault → the standby is promoted"))
    first_failure = next((t for t in sorted(rig.ledger.write_failures) if fault_t is not None and t >= fault_t), None)
    if fault_t is not None and first_failure is None:
        first_write: float | None = 0.0
    else:
        first_write = after_fault(
            next(
                (t for t in sorted(rig.ledger.write_successes) if first_failure is not None and t > first_failure), None
            )
        )
    out.append(Measure("first_write_s", first_write, "s", detail="fault → first acknowledged write through the edge"))
    rto = None if fault_t is None else figures.rto_s(samples, fault_t, profile.drill.hold_s, gates.error_pct)
    out.append(
        Measure(
            "rto_s",
            None if rto is None else round(rto, 3),
            "s",
            gates.rto_s,
            f"fault → every second's errors ≤ {gates.error_pct:g}% for {profile.drill.hold_s:g} s",
        )
    )
    if stored is None:
        out.append(Measure("rpo_messages", None, "messages", gates.rpo_messages, "the new primary could not be read"))
    else:
        missing = sorted(set(rig.ledger.acked) - stored)
        detail = (
            f"{len(missing)} of {len(rig.ledger.acked)} acknowledged messages missing; replication lag at the "
            f"fault {lag_at_fault_ms if lag_at_fault_ms is not None else '?'} ms; "
            f"{'synchronous' if profile.drill.synchronous_commit else 'asynchronous'} commit"
        )
        if missing:
            detail += f"; first missing: {', '.join(missing[:5])}"
        out.append(Measure("rpo_messages", float(len(missing)), "messages", gates.rpo_messages, detail))
    out.append(Measure("lag_at_fault_ms", lag_at_fault_ms, "ms", detail="the primary's replication lag just before"))
    out.append(
        Measure(
            "duplicates",
            float(rig.realtime.duplicates),
            "messages",
            0,
            "messages a realtime subscriber received twice (a resend keeps its client id)",
        )
    )
    reconnect = None if fault_t is None else after_fault(_realtime_back(rig, fault_t))
    out.append(
        Measure(
            "realtime_reconnect_s",
            reconnect,
            "s",
            gates.realtime_reconnect_s,
            "fault → a message written to the new primary arrives over realtime (reconnect and rejoin included)",
        )
    )
    out.append(
        Measure(
            "meeting_rejoin_s",
            after_fault(rig.meeting.joined_at),
            "s",
            gates.meeting_rejoin_s,
            f"fault → a meeting joined (token through the edge, then LiveKit); {rig.meeting.attempts} "
            f"attempts{'; last error: ' + rig.meeting.last_error if rig.meeting.last_error else ''}",
        )
    )
    out.append(
        Measure(
            "error_pct",
            round(figures.error_pct(samples), 2),
            "%",
            gates.error_budget_pct,
            "failed requests over the whole drill (the error budget)",
        )
    )
    out.append(Measure("acknowledged", float(len(rig.ledger.acked)), "messages", detail="writes acknowledged"))
    return out


def new_run_id(kind: str) -> str:
    return f"drill-{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


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
            stored, primary = stored_ids(rig)
            rig.event("note", f"acknowledged messages checked on {primary}")
        except (RuntimeError, httpx.HTTPError) as exc:
            stored = None
            rig.event("note", f"could not read the messages back: {exc}")
        result.timeline = rig.recorder.samples()
        result.measures = measures(rig, profile, fault_t, lag_at_fault, stored)
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
