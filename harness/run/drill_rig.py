"""The drill's rig: a reference stack with the load, the watchers and the DR context on it, ready to drive.

stack_config   the stack a drill needs: origin proxies (partition, slow), its data in the report folder,
               the replica's commit mode
build_rig      the DR context (Singapore probed through its origin proxy, like the edge reaches it), the
               writers and readers provisioned, the realtime, meeting and lag watchers, and a journal listener
               that turns every DR decision and action into a timeline event
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.clients.supabase.sync import SupabaseClient
from harness.dr.actions import DrContext, Outcome
from harness.dr.edge import EdgeSwitch
from harness.dr.journal import Journal
from harness.dr.monitor import MonitorSettings, monitor
from harness.dr.topology import JAPAN, SINGAPORE, Region, Topology
from harness.model import keys
from harness.model.drill import DrillEvent, EventKind
from harness.model.drill_profile import DrillProfile
from harness.model.run_ids import run_dir
from harness.model.target_config import Secret
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts
from harness.run import drill_faults
from harness.run.drill_watch import LagWatch, MeetingWatch, RealtimeWatch
from harness.run.ledger import Ledger, Recorder


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

    def event(self, kind: EventKind, label: str, t: float | None = None) -> None:
        self.events.append(DrillEvent(round(self.recorder.now() if t is None else t, 3), kind, label))

    def start(self, *, realtime: bool) -> None:
        """Start the drill's clock, the writers and readers, the lag sampler (and the realtime subscriber)."""
        self.recorder.t0, self.t0_unix = time.monotonic(), time.time()
        self.ledger.start()
        self.lag.start()
        if realtime:
            self.realtime.start()

    def start_monitor(self, profile: DrillProfile, stop: threading.Event) -> threading.Thread:
        """The DR monitor in a thread, bounded to the drill's length; its failover outcomes land in `outcomes`."""
        mon = profile.monitor
        rounds = int(profile.drill.max_duration_s / mon.interval_s) + 10
        settings = MonitorSettings(interval_s=mon.interval_s, failures=mon.failures, max_rounds=rounds)
        thread = threading.Thread(target=monitor, args=(self.ctx, settings), name="dr-monitor", daemon=True,
                                  kwargs={"stop": stop, "on_action": self.outcomes.append})  # fmt: skip
        thread.start()
        return thread

    def halt(self) -> None:
        """Stop every load and watcher thread (each join is bounded)."""
        self.ledger.halt()
        self.realtime.halt()
        self.meeting.halt()
        self.lag.halt()


@dataclass
class DrillOptions:
    reports_dir: Path = Path("reports")
    run_id: str | None = None
    promote_cmd: str | None = None
    """Promote another way (or deliberately not at all: `false` breaks the DR, and the drill must fail)."""


def open_rig(
    kind: str, profile: DrillProfile, options: DrillOptions, cleanup: contextlib.ExitStack
) -> tuple[str, Path, DrillRig]:
    """The run id, its report folder, and a rig on a freshly started stack (stopped by `cleanup`)."""
    run_id = options.run_id or new_run_id(kind)
    out_dir = run_dir(options.reports_dir, run_id)  # before the stack starts: a bad --run-id is refused at once
    out_dir.mkdir(parents=True, exist_ok=True)
    stack = ReferenceStack(stack_config(profile, out_dir))
    cleanup.callback(stack.stop)
    stack.start()
    return run_id, out_dir, build_rig(stack, profile, run_id, out_dir, options.promote_cmd, cleanup)


def stack_config(profile: DrillProfile, out_dir: Path) -> StackConfig:
    return StackConfig(
        ports=StackPorts.any(),
        data_dir=out_dir / "stack",
        log_dir=out_dir / "stack",
        origin_proxies=True,
        synchronous_replica=profile.drill.synchronous_commit,
        replication_lag_ms=profile.drill.replication_lag_ms,
        replication_proxy=profile.drill.replication_kbps is not None,
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
        return ledger.last_ack_t is not None and recorder.now() - ledger.last_ack_t < 2.0

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
    if profile.drill.replication_kbps is not None:
        rig.event("note", drill_faults.throttle_replication(stack, profile.drill.replication_kbps), 0.0)
    return rig


def new_run_id(kind: str) -> str:
    return f"drill-{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
