"""The run orchestrator: one profile in, one verdict and one report folder out.

    profile (+ CLI overrides) ─► target: --host/--env-file, or start the reference stack ─► safety + preflight
        ─► smoke checklist (smoke runs) ─► Locust master + N workers ─► progress line every ~2 s on stderr
        ─► stop ─► collect result.json ─► gates ─► reports/<run-id>/ ─► clean up (every exit path)

The first SIGINT/SIGTERM stops the load gracefully and still reports (the result is marked partial, so the
verdict is invalid); a second one aborts at once. Children are stopped in `finally`, and die with this process
anyway (PR_SET_PDEATHSIG). Errors are raised (`harness.errors`); only the CLI turns them into exit codes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from harness.errors import ConfigError, TargetUnreachable
from harness.gates import Verdict, evaluate, fmt
from harness.loadgen import settings as hs
from harness.loadgen.processes import EXPECT_WORKERS_MAX_WAIT_S, ClusterConfig, LocustCluster
from harness.loadgen.target import Target, check_allowed, from_env, from_reference, preflight, require_keys
from harness.profile import GatesConfig, Profile, load_profile, resolve_profile
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts
from harness.report import render_text, write_reports
from harness.result import Result, ResultBuilder, RunInfo, load_result
from harness.smoke import CheckResult, run_checklist

PROGRESS_INTERVAL_S = 2.0
"""How often the progress line is printed."""
OVERRUN_GRACE_S = 30.0
"""How long past its planned end (plus the worker wait) a run may go before it is stopped and marked partial."""
REPO_ROOT = Path(__file__).resolve().parent.parent
FALLBACK_LOCUSTFILE = Path(__file__).resolve().parent / "loadgen" / "fallback_locustfile.py"
DEFAULT_LOCUSTFILE = Path("locustfiles") / "mixed.py"
FALLBACK_GATES_OFF = ("delivery_p95_ms", "delivery_max_loss_pct", "delivery_max_duplicates", "meeting_join_p95_ms")
"""Gates the fallback locustfile has no samples for (it does no realtime delivery or meeting joins)."""


@dataclass
class RunOptions:
    profile: str
    """A profile name (profiles/<name>.toml) or a path to a .toml file."""
    workers: int | None = None
    """Local Locust workers; None = the profile's `workers`, else one per CPU."""
    duration_s: float | None = None
    users: int | None = None
    spawn_rate: float | None = None
    host: str | None = None
    env_file: Path | None = None
    confirm_remote: bool = False
    reports_dir: Path = Path("reports")
    run_id: str | None = None
    locustfile: Path | None = None
    checks: bool = False
    """Run the smoke checklist before the load."""
    progress_interval_s: float = PROGRESS_INTERVAL_S


@dataclass
class RunOutcome:
    verdict: Verdict
    result: Result
    out_dir: Path
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return self.verdict.exit_code


# ---- the profile ----


def effective_profile(profile: Profile, options: RunOptions, where: str) -> Profile:
    """The profile with --duration/--users/--spawn-rate applied and re-validated."""
    overrides = {"duration_s": options.duration_s, "users": options.users, "spawn_rate": options.spawn_rate}
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return profile
    if profile.load.stages is not None:
        flags = ", ".join(f"--{k.removesuffix('_s').replace('_', '-')}" for k in given)
        raise ConfigError(f"{flags}: {where} uses [[load.stages]]; edit its stages (or copy it) to change the shape")
    data = profile_data(profile)
    data["load"].update(given)
    try:
        new = Profile.model_validate(data)
    except ValueError as exc:
        raise ConfigError(f"{where} with {given}: {exc}") from None
    start_s, end_s = new.plateau_s()
    if end_s - start_s < new.window_s:
        raise ConfigError(
            f"--duration: {new.load.total_duration_s:g} s leaves a plateau of {max(0.0, end_s - start_s):g} s, shorter "
            f"than one window ({new.window_s:g} s); give at least {new.load.total_duration_s + new.window_s:g} s"
        )
    return new


def profile_data(profile: Profile) -> dict[str, Any]:
    """JSON-able data that validates back into the same profile (`workers = None` means "absent" in TOML)."""
    data = profile.model_dump(mode="json")
    if data.get("workers") is None:
        data.pop("workers", None)
    return data


def choose_locustfile(explicit: Path | None) -> tuple[Path, bool]:
    """(locustfile, is_fallback): --locustfile, else locustfiles/mixed.py, else the fallback light load."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"--locustfile: {explicit} does not exist (give a path to a .py locustfile)")
        return explicit, explicit.resolve() == FALLBACK_LOCUSTFILE
    for candidate in (DEFAULT_LOCUSTFILE, REPO_ROOT / DEFAULT_LOCUSTFILE):
        if candidate.is_file():
            return candidate, False
    return FALLBACK_LOCUSTFILE, True


def _without(gates: GatesConfig, names: tuple[str, ...]) -> GatesConfig:
    return gates.model_copy(update=dict.fromkeys(names))


def _say(log: TextIO, text: str) -> None:
    print(f"harness: {text}", file=log, flush=True)


# ---- signals ----


class StopRequest:
    """First SIGINT/SIGTERM: stop gracefully (set `event`); a second one: abort (KeyboardInterrupt)."""

    def __init__(self, log: TextIO) -> None:
        self.event = threading.Event()
        self.log = log
        self.signal_name = ""
        self._old: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def wait(self, timeout_s: float) -> bool:
        return self.event.wait(timeout_s)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        self.event.set()
        print(
            f"harness: {self.signal_name}: stopping; the report will be marked partial (again to abort)", file=self.log
        )

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


# ---- progress ----


class ProgressPrinter:
    """One plain line per interval (no carriage returns: CI logs keep every line readable)."""

    RPS_WINDOW_S = 6.0
    """Throughput is the request delta over about this long (workers report every 3 s)."""

    def __init__(self, name: str, log: TextIO, interval_s: float) -> None:
        self.name = name
        self.log = log
        self.interval_s = interval_s
        self._next = time.monotonic() + interval_s
        self._history: deque[tuple[float, int]] = deque()

    def maybe_print(self, progress: dict[str, Any] | None) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval_s
        print(self.line(progress), file=self.log, flush=True)

    def line(self, p: dict[str, Any] | None) -> str:
        head = f"harness: {self.name}"
        if not p:
            return f"{head}  starting Locust"
        workers = f"workers {p.get('workers', 0)}/{p.get('workers_expected', '?')}"
        if p.get("state") == "waiting" or p.get("started_s") is None:
            return f"{head}  waiting for {workers}"
        elapsed_s = max(0.0, float(p["t_s"]) - float(p["started_s"]))
        planned_s = float(p.get("planned_s") or 0)
        left_s = max(0.0, planned_s - elapsed_s)
        p95 = p.get("p95_ms")
        return (
            f"{head}  {elapsed_s:.0f}s/{planned_s:.0f}s  users {p.get('users', 0)}  {workers}  "
            f"rps {self._rps(float(p['t_s']), int(p.get('requests') or 0)):.1f}  "
            f"p95 {fmt(float(p95), 'ms') if p95 else 'n/a'}  errors {float(p.get('error_pct') or 0):.2f} %  "
            f"{left_s:.0f} s left"
        )

    def _rps(self, t_s: float, requests: int) -> float:
        self._history.append((t_s, requests))
        while len(self._history) > 2 and t_s - self._history[0][0] > self.RPS_WINDOW_S:
            self._history.popleft()
        t0, r0 = self._history[0]
        return (requests - r0) / (t_s - t0) if t_s > t0 else 0.0


def _read_progress(out_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((out_dir / hs.PROGRESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# ---- the steps ----


def _resolve_target(options: RunOptions, profile: Profile, cleanup: contextlib.ExitStack, out_dir: Path) -> Target:
    if options.host or options.env_file or profile.target == "env":
        return from_env(options.host, options.env_file)
    stack = ReferenceStack(StackConfig(ports=StackPorts.any(), log_dir=out_dir / "stack"))
    cleanup.callback(stack.stop)
    stack.start()
    return from_reference(stack.endpoints)


def _locust_env(options: RunOptions, target: Target, profile_path: Path, out_dir: Path, run_id: str, workers: int):
    return {
        **target.env,
        hs.PROFILE: str(profile_path),
        hs.RUN_ID: run_id,
        hs.OUT_DIR: str(out_dir),
        hs.WORKERS_EXPECTED: str(workers),
        hs.TARGET_LABEL: target.label,
    }


def _watch(
    cluster: LocustCluster, profile: Profile, stop: StopRequest, out_dir: Path, printer: ProgressPrinter
) -> bool:
    """Print progress until the master exits by itself (False) or the run is stopped or overruns (True)."""
    deadline = time.monotonic() + profile.load.total_duration_s + EXPECT_WORKERS_MAX_WAIT_S + OVERRUN_GRACE_S
    while cluster.master_running():
        if stop.requested:
            return True
        if time.monotonic() > deadline:
            print(
                f"harness: the run did not end {OVERRUN_GRACE_S:.0f} s after its planned end; stopping",
                file=printer.log,
            )
            return True
        printer.maybe_print(_read_progress(out_dir))
        stop.wait(0.2)
    return False


def _empty_result(run_id: str, profile: Profile, label: str, workers: int, reachable: bool) -> Result:
    now = time.time()
    run = RunInfo(
        run_id=run_id,
        profile=profile.name,
        started_s=now,
        ended_s=now,
        target=label,
        workers_expected=workers,
        workers_seen=0,
        partial=True,
        target_reachable=reachable,
    )
    return ResultBuilder(window_s=profile.window_s).build(run, profile.gates)


def _collect(
    out_dir: Path,
    profile: Profile,
    run_id: str,
    target_label: str,
    workers: int,
    checks: list[CheckResult],
    interrupted: bool,
    log: TextIO,
) -> Result:
    try:
        result = load_result(out_dir / hs.RESULT_FILE)
    except ConfigError as exc:
        print(f"harness: no result from the Locust master ({exc}); see {out_dir}/locust-master.log", file=log)
        result = _empty_result(run_id, profile, target_label, workers, reachable=True)
    smoke = [c.to_smoke_check() for c in checks]
    run = result.run.model_copy(update={"smoke_checks": smoke, "partial": result.run.partial or interrupted})
    return result.model_copy(update={"run": run})


def _report(result: Result, out_dir: Path, log: TextIO) -> RunOutcome:
    verdict = evaluate(result)
    paths = write_reports(result, out_dir, verdict=verdict, step_summary=os.environ.get("GITHUB_STEP_SUMMARY") or None)
    sys.stdout.write(render_text(verdict))
    print(f"harness: reports in {out_dir}/", file=log)
    return RunOutcome(verdict, result, out_dir, paths)


def _print_checks(checks: list[CheckResult], log: TextIO) -> None:
    for c in checks:
        print(
            f"harness: check {'PASS' if c.passed else 'FAIL'}  {c.name}: {c.message} ({c.elapsed_ms:.0f} ms)", file=log
        )


@contextlib.contextmanager
def _cluster(config: ClusterConfig) -> Iterator[LocustCluster]:
    cluster = LocustCluster(config)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def run(options: RunOptions, log: TextIO = sys.stderr) -> RunOutcome:
    """The whole run. Raises ConfigError before anything starts, TargetUnreachable (after reporting it)."""
    source = resolve_profile(options.profile)
    profile = effective_profile(load_profile(source), options, str(source))
    locustfile, fallback = choose_locustfile(options.locustfile)
    if fallback:
        print(
            f"harness: light fallback load ({FALLBACK_LOCUSTFILE.name}); "
            f"gates off for lack of samples: {', '.join(FALLBACK_GATES_OFF)}",
            file=log,
        )
        profile = profile.model_copy(update={"gates": _without(profile.gates, FALLBACK_GATES_OFF)})
    workers = options.workers or profile.workers or os.cpu_count() or 1
    run_id = options.run_id or f"{profile.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    out_dir = options.reports_dir / run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (hs.RESULT_FILE, hs.PROGRESS_FILE):
        (out_dir / stale).unlink(missing_ok=True)
    profile_path = out_dir / "profile.json"
    profile_path.write_text(json.dumps(profile_data(profile), indent=2), encoding="utf-8")

    checks: list[CheckResult] = []
    with StopRequest(log) as stop, contextlib.ExitStack() as cleanup:
        target = _resolve_target(options, profile, cleanup, out_dir)
        check_allowed(target, options.confirm_remote)
        require_keys(target)
        print(
            f"harness: run {run_id}: profile {profile.name} against {target.label} with {workers} worker(s)", file=log
        )
        try:
            preflight(target)
        except TargetUnreachable:
            _report(_empty_result(run_id, profile, target.label, workers, reachable=False), out_dir, log)
            raise
        if options.checks:
            checks = run_checklist(target, confirm_remote=options.confirm_remote)
            _print_checks(checks, log)
        interrupted = stop.requested
        if not interrupted:
            env = _locust_env(options, target, profile_path, out_dir, run_id, workers)
            config = ClusterConfig(locustfile=locustfile, workers=workers, host=target.url, out_dir=out_dir, env=env)
            with _cluster(config) as cluster:
                printer = ProgressPrinter(profile.name, log, options.progress_interval_s)
                interrupted = _watch(cluster, profile, stop, out_dir, printer)
    result = _collect(out_dir, profile, run_id, target.label, workers, checks, interrupted, log)
    return _report(result, out_dir, log)
