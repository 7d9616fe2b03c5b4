"""The one import that wires a locustfile to the harness:

    from harness.loadgen.plugin import ProfileShape  # noqa: F401  (result, CPU samples, progress, load shape)

Importing this module adds listeners to Locust's global events; they act only when `HARNESS_PROFILE` is set
(a `harness run`, or a master/worker started with the same variables), so a plain `locust -f` run is unaffected
apart from `ProfileShape` following `-u/-r/-t`.

    worker / local runner                              master / local runner
    events.request ─► ResultBuilder.record             events.worker_report ─► ResultBuilder.merge
    every 1 s: psutil CPU % ─► record_cpu              every 1 s: users sample, progress.json
    events.report_to_master ─► payload (reset) ──────► quitting: collect final reports, write result.json
                                                        (partial = the shape did not reach its end)
                                                        master: the same payloads ─► LiveTally ─► progress.json
                                                        `live` (run totals, recent sketches: the run's /metrics)
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import gevent
import psutil
from locust import LoadTestShape, events
from locust.env import Environment
from locust.runners import STATE_RUNNING, STATE_SPAWNING, MasterRunner, WorkerRunner

from harness.loadgen.arrivals import ArrivalGate, install_gate
from harness.loadgen.env import PROGRESS_FILE, RESULT_FILE, SNAPSHOT_FILE, Settings, read_profile
from harness.model.breakdown import CONNECT_EVENTS
from harness.model.live import LiveTally
from harness.model.metrics import ACKED_OBJECT_MISSING_KIND, ACKED_UPLOAD
from harness.model.profile import ENVIRONMENT_ATTRIBUTE, USER_CLASSES, Profile
from harness.model.result import GroupInfo, Result, ResultBuilder, RunInfo, SteadyState, dump_result
from harness.model.target_config import names_from_mapping
from harness.procs.gctune import tune_gc
from harness.scenarios import runstate

CPU_SAMPLE_INTERVAL_S = 1.0
"""How often each generator process samples its own CPU use (the validity gate judges saturation from these)."""
PROGRESS_INTERVAL_S = 1.0
"""How often the master writes progress.json and samples the user count."""

log = logging.getLogger(__name__)

_payload_key = "harness"
_plugin: HarnessPlugin | None = None
_shape_finished = False


def current_profile() -> Profile | None:
    """The run's profile in this process (None outside a harness run), for locustfiles that need groups or keys."""
    return _plugin.profile if _plugin is not None else None


def failure_kind(exception: BaseException | None, context: dict[str, Any]) -> str:
    """`context["failure_kind"]`, an exception's `kind`, `acked_object_missing` for a 404 on a read of an
    acknowledged upload, "timeout" for timeouts, else "error"."""
    kind = context.get("failure_kind") or getattr(exception, "kind", None)
    if isinstance(kind, str) and kind:
        return kind
    if context.get(ACKED_UPLOAD) and getattr(exception, "status", None) == 404:
        return ACKED_OBJECT_MISSING_KIND
    if isinstance(exception, TimeoutError | socket.timeout) or "timeout" in type(exception).__name__.lower():
        return "timeout"
    return "error"


def _origin_from(response: Any, region_header: str) -> str | None:
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get(region_header)
    except Exception:  # header objects differ between Locust clients; a tally is optional
        return None
    return str(value) if value else None


class HarnessPlugin:
    """Per-process state: the builder, the role's listeners and greenlets."""

    def __init__(self, environment: Environment, settings: Settings) -> None:
        self.environment = environment
        self.settings = settings
        self.profile = read_profile(settings.profile_path)
        self.region_header = names_from_mapping(os.environ).region_header
        """For plain Locust HTTP users, whose events carry no `origin_region` (the harness clients' do)."""
        setattr(environment, ENVIRONMENT_ATTRIBUTE, self.profile)
        runner = environment.runner
        self.is_master = isinstance(runner, MasterRunner)
        self.is_worker = isinstance(runner, WorkerRunner)
        name = settings.worker_name or (runner.client_id if isinstance(runner, WorkerRunner) else "local")
        self.builder = ResultBuilder(window_s=self.profile.window_s, worker=name)
        self.live = LiveTally(self.profile.window_s) if self.is_master else None
        self.default_group = next(iter(self.profile.groups))
        self.started_s: float | None = None
        self.planned_s = self.profile.load.total_duration_s
        self._samples: list[str] = []
        self._written = False
        self._apply_scenarios()
        self.arrival_gates: list[ArrivalGate] = []
        self.missing_arrival_classes = self._apply_arrivals()
        if settings.host and not self.is_master:
            for cls in environment.user_classes:
                cls.host = settings.host  # the master sends no host in group runs, so Locust keeps this one
        ev = environment.events
        if not self.is_master:
            tune_gc()  # a worker allocates per request and per frame; start-up's objects need no rescanning
            ev.request.add_listener(self._on_request)
            gevent.spawn(self._sample_cpu)
            ev.test_start.add_listener(self._start_arrivals)
            ev.test_stop.add_listener(self._stop_arrivals)
        if self.is_worker:
            ev.report_to_master.add_listener(self._on_report_to_master)
        else:
            ev.test_start.add_listener(self._on_test_start)
            ev.quitting.add_listener(self._on_quitting)
            gevent.spawn(self._progress_loop)
            gevent.signal_handler(signal.SIGTERM, self._on_sigterm)
        if self.is_master:
            ev.worker_report.add_listener(self._on_worker_report)

    # ---- scenario weights ----

    def _apply_scenarios(self) -> None:
        """A harness locustfile (classes named as in the profile's [scenarios]) runs the profile's mix."""
        classes = self.environment.user_classes
        if not {c.__name__ for c in classes} & set(USER_CLASSES):
            return  # a locustfile with its own classes (fixtures, the fallback): its weights stand
        weights = self.profile.scenarios.weights()
        keep = [c for c in classes if weights.get(c.__name__, 0) > 0 or c.__name__ in self.profile.arrival]
        for cls in keep:
            cls.weight = weights.get(cls.__name__, 1)  # open classes: fixed_count decides (_apply_arrivals)
        if keep:
            classes[:] = keep

    # ---- open model ([arrival] classes) ----

    def _apply_arrivals(self) -> list[str]:
        """Each open class spawns exactly its pool (Locust's fixed_count, before any weighted class) and, on
        processes that run users, waits for slots from its scheduler. Returns the classes the locustfile lacks."""
        by_name = {c.__name__: c for c in self.environment.user_classes}
        share = 1.0 / max(1, self.settings.workers_expected)
        for name, arrival in self.profile.arrival.items():
            cls = by_name.get(name)
            if cls is None:
                continue
            cls.fixed_count = arrival.max_users
            if not self.is_master:
                gate = ArrivalGate(name, arrival.schedule(), share, self.builder)
                install_gate(cls, gate)
                self.arrival_gates.append(gate)
        return sorted(set(self.profile.arrival) - set(by_name))

    def _start_arrivals(self, **_: Any) -> None:
        for gate in self.arrival_gates:
            gate.start()

    def _stop_arrivals(self, **_: Any) -> None:
        for gate in self.arrival_gates:
            gate.stop()

    # ---- worker side ----

    def _on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int | None = 0,
        exception: BaseException | None = None,
        context: dict[str, Any] | None = None,
        response: Any = None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        ctx = context or {}
        origin = ctx.get("origin_region") or _origin_from(response, self.region_header)
        group = ctx.get("group") or self.default_group
        ok = exception is None
        t_s = start_time or time.time()
        ms = float(response_time or 0.0)
        wait_ms = ctx.get("wait_ms")
        connect_ms = ctx.get("connect_ms")
        body_ms = ctx.get("body_ms")
        if wait_ms is None and CONNECT_EVENTS.get(name) == request_type:
            connect_ms, wait_ms, body_ms = ms, 0.0, 0.0  # a websocket connect is all connect leg
        self.builder.record(
            name,
            request_type,
            group,
            ms,
            ok,
            t_s,
            origin_region=origin,
            failure_kind=None if ok else failure_kind(exception, ctx),
            bytes=int(response_length or 0),
            user_class=ctx.get("user_class") or None,
            connect_ms=connect_ms,
            wait_ms=wait_ms,
            body_ms=body_ms,
            sent_bytes=int(ctx.get("bytes_sent") or 0) if wait_ms is not None else 0,
            wire_bytes=int(ctx.get("wire_bytes") or 0),
        )
        if self.settings.sample_log:
            self._samples.append(json.dumps({"t": t_s, "name": name, "group": group, "ms": ms, "ok": ok}))

    def _take_hops(self) -> None:
        """The delivery recorder's hop counts and leg sketches since the last report, into the builder."""
        state = runstate.state_of(self.environment)
        if state is not None and state.recorder is not None:
            self.builder.record_hops(*state.recorder.drain_hops())

    def _on_report_to_master(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        self._take_hops()
        data[_payload_key] = self.builder.to_payload(reset=True)
        self._flush_samples()

    def _flush_samples(self) -> None:
        if not self._samples:
            return
        path = self.settings.out_dir / f"samples-{self.builder.worker}.jsonl"
        with open(path, "a", encoding="utf-8") as f:
            f.write("\n".join(self._samples) + "\n")
        self._samples = []

    def _sample_cpu(self) -> None:
        process = psutil.Process(os.getpid())
        process.cpu_percent(None)  # the first call only sets the baseline
        while True:
            gevent.sleep(CPU_SAMPLE_INTERVAL_S)
            cpu_pct = process.cpu_percent(None)
            runner = self.environment.runner
            if runner is not None and runner.state in (STATE_SPAWNING, STATE_RUNNING):
                self.builder.record_cpu(time.time(), cpu_pct)

    # ---- master side ----

    def _on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        payload = data.get(_payload_key)
        if payload is not None:
            self.builder.merge(payload)
            if self.live is not None:
                self.live.absorb(payload)

    def _on_test_start(self, **_: Any) -> None:
        if self.started_s is None:
            self.started_s = time.time()
        if self.missing_arrival_classes:
            log.error(
                "harness: [arrival] names %s, not a user class of this locustfile (%s); fix the profile",
                ", ".join(self.missing_arrival_classes),
                ", ".join(c.__name__ for c in self.environment.user_classes),
            )
            self.environment.process_exit_code = 2
            runner = self.environment.runner
            if runner is not None:
                gevent.spawn(runner.quit)

    def _progress_loop(self) -> None:
        next_snapshot = time.monotonic()
        while not self._written:
            gevent.sleep(PROGRESS_INTERVAL_S)
            runner = self.environment.runner
            if runner is None:
                continue
            if self.started_s is not None and runner.state in (STATE_SPAWNING, STATE_RUNNING):
                self.builder.record_users(time.time(), runner.user_count)
            if self._written:
                break
            self._write_progress("running" if self.started_s is not None else "waiting")
            snapshot_s = self.settings.snapshot_s
            if snapshot_s is not None and self.started_s is not None and time.monotonic() >= next_snapshot:
                next_snapshot = time.monotonic() + snapshot_s
                self._write_snapshot()

    def _write_progress(self, state: str) -> None:
        runner = self.environment.runner
        assert runner is not None
        total = runner.stats.total
        try:
            p95_ms = total.get_current_response_time_percentile(0.95)
        except ValueError:  # the response-time cache is off: fall back to the whole-run figure
            p95_ms = total.get_response_time_percentile(0.95) if total.num_requests else None
        workers = 1
        if isinstance(runner, MasterRunner):
            workers = len(runner.clients.ready) + len(runner.clients.running) + len(runner.clients.spawning)
        now_s = time.time()
        progress: dict[str, Any] = {
            "t_s": now_s,
            "state": state,
            "started_s": self.started_s,
            "planned_s": self.planned_s,
            "users": runner.user_count,
            "workers": workers,
            "workers_expected": self.settings.workers_expected,
            "requests": total.num_requests,
            "rps": total.current_rps,
            "p95_ms": p95_ms,
            "error_pct": 100.0 * total.fail_ratio,
        }
        if self.live is not None:  # the headline as the gates count it: requests only, not deliveries
            progress["live"] = self.live.snapshot(now_s)
            progress.update(self.live.headline())
        _write_atomic(self.settings.out_dir / PROGRESS_FILE, json.dumps(progress))

    def _on_sigterm(self) -> None:
        """Graceful stop. Headless Locust installs its own SIGTERM handler only after a shape run has ended, so
        until then SIGTERM would kill the master outright and lose the result."""
        runner = self.environment.runner
        assert runner is not None
        if self.started_s is None:  # still waiting for workers: nothing to collect, and Locust's loop cannot be broken
            self.write_result()
            runner.quit()
            os._exit(0)
        runner.quit()  # ends the shape; Locust then shuts down, firing `quitting`, which writes result.json

    def _on_quitting(self, environment: Environment, **_: Any) -> None:
        runner = environment.runner
        if runner is not None and len(runner.greenlet) > 0:
            # Stopped by a signal: quit now so the workers' final reports arrive before result.json is written.
            runner.quit()
        self.write_result()

    def _write_snapshot(self) -> None:
        """The result so far (partial), for a watcher that judges the run while it goes on (`harness capacity`)."""
        result = self._build(time.time(), partial=True)
        _write_atomic(self.settings.out_dir / SNAPSHOT_FILE, result.model_dump_json())

    def write_result(self) -> Path:
        """result.json in the output folder; partial unless the load shape reached its end."""
        path = self.settings.out_dir / RESULT_FILE
        if self._written:
            return path
        self._written = True
        if not self.is_master:
            self._flush_samples()
            self._take_hops()
        self._write_progress("finished")
        return dump_result(self._build(time.time(), partial=not _shape_finished), path)

    def _build(self, ended_s: float, partial: bool) -> Result:
        started_s = self.started_s if self.started_s is not None else ended_s
        workers_seen = len(self.builder.workers_seen) if self.is_master else 1
        profile = self.profile
        run = RunInfo(
            run_id=self.settings.run_id,
            profile=profile.name,
            started_s=started_s,
            ended_s=ended_s,
            target=self.settings.target_label,
            workers_expected=self.settings.workers_expected if self.is_master else 1,
            workers_seen=workers_seen,
            partial=partial,
            steady_state=SteadyState.from_plateau(started_s, profile.plateau_s()),
            groups={name: GroupInfo(network=g.network, country=g.country) for name, g in profile.groups.items()},
        )
        return self.builder.build(run, profile.gates).model_copy(update={"arrival": dict(profile.arrival)})


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class ProfileShape(LoadTestShape):
    """The profile's load: each stage's users and spawn rate for its duration, then stop (the run is complete).

    Without a harness profile it follows `-u`, `-r` and `-t`, so the locustfile still runs under plain Locust.
    """

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        global _shape_finished
        t_s = self.get_run_time()
        if _plugin is None:
            return self._plain_tick(t_s)
        end_s = 0.0
        pools = _plugin.profile.arrival_users  # open-model pools run the whole time, on top of each stage's users
        for stage in _plugin.profile.load.as_stages():
            end_s += stage.duration_s
            if t_s < end_s:
                return stage.users + pools, stage.spawn_rate
        _shape_finished = True
        return None

    def _plain_tick(self, t_s: float) -> tuple[int, float] | None:
        assert self.runner is not None
        options = self.runner.environment.parsed_options
        run_time_s = getattr(options, "run_time", None)
        if run_time_s and t_s >= run_time_s:
            return None
        return int(getattr(options, "num_users", None) or 1), float(getattr(options, "spawn_rate", None) or 1)


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    global _plugin
    settings = Settings.from_env()
    if settings is None or _plugin is not None:
        return
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    _plugin = HarnessPlugin(environment, settings)
