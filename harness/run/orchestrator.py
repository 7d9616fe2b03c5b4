"""The run orchestrator: one profile in, one verdict and one report folder out.

    profile (+ CLI overrides) ─► target: --host/--env-file, or start the reference stack ─► safety + preflight
        ─► smoke checklist (smoke runs) ─► test users (credentials.json, 0600) ─► shaped paths for groups not on
        the direct network (harness/run/shaping.py: namespace, Toxiproxy, proxies, toxics) ─► Locust master + workers
        (one worker set per group in multi-group runs) ─► progress line every ~2 s on stderr
        ─► stop ─► collect result.json ─► gates ─► reports/<run-id>/ ─► clean up (every exit path, in reverse:
        Locust, toxics, proxies, Toxiproxy, namespace, test users, reference stack)

The first SIGINT/SIGTERM stops the load gracefully and still reports (the result is marked partial, so the
verdict is invalid); a second one aborts at once. Children are stopped in `finally`, and die with this process
anyway (PR_SET_PDEATHSIG). Errors are raised (`harness.errors`); only the CLI turns them into exit codes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
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

from harness.errors import ConfigError, HarnessError, TargetUnreachable
from harness.gates.verdict import Verdict, evaluate, fmt
from harness.loadgen import env as hs
from harness.loadgen.cluster import EXPECT_WORKERS_MAX_WAIT_S, ClusterConfig, LocustCluster, WorkerGroup
from harness.model.credentials import Credentials
from harness.model.profile import GatesConfig, Profile, load_profile, resolve_profile
from harness.model.result import Result, ResultBuilder, RunInfo, load_result
from harness.network import kernel
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts
from harness.report import render_text, write_reports
from harness.run import shaping as china
from harness.run.smoke import CheckResult, run_checklist
from harness.run.target import Target, check_allowed, from_reference, preflight, resolve
from harness.run.users import cleanup, provision

PROGRESS_INTERVAL_S = 2.0
"""How often the progress line is printed."""
OVERRUN_GRACE_S = 30.0
"""How long past its planned end (plus the worker wait) a run may go before it is stopped and marked partial."""
REPO_ROOT = Path(__file__).resolve().parents[2]
FALLBACK_LOCUSTFILE = Path(__file__).resolve().parents[1] / "loadgen" / "fallback_locustfile.py"
DEFAULT_LOCUSTFILE = Path("locustfiles") / "mixed.py"
FALLBACK_GATES_OFF = ("delivery_p95_ms", "delivery_max_loss_pct", "delivery_max_duplicates", "meeting_join_p95_ms")
"""Gates the fallback locustfile has no samples for (it does no realtime delivery or meeting joins)."""
ACCOUNT_CLASSES = ("MessagingUser", "MeetingUser", "FileTransferUser")
"""User classes that play provisioned test users (WebUser needs none)."""
USERS_PREFIX = "loadtest"
"""Tag of every test user a run creates (`harness users cleanup --prefix loadtest` removes leftovers)."""
GROUP_SIZE_VAR = "HARNESS_GROUP_SIZE"
DEFAULT_GROUP_SIZE = 4
"""Members per provisioned block of users (the scenarios' default; HARNESS_GROUP_SIZE changes both)."""
CREDENTIALS_FILE = "credentials.json"
NETWORK_FILE = "network.json"


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
    network: str | None = None
    """Network profile (netem/<name>.toml) for the groups claiming country CN; None = the profile's own."""
    overlays: tuple[str, ...] = ()
    """Overlays stacked on those groups' network, in order."""
    kernel: bool = False
    """Run shaped groups' workers in a network namespace with kernel packet loss (root only)."""
    keep_users: bool = False
    """Leave the provisioned test users (and credentials.json) in place after the run."""


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
        return resolve(options.host, options.env_file)
    stack = ReferenceStack(StackConfig(ports=StackPorts.any(), log_dir=out_dir / "stack"))
    cleanup.callback(stack.stop)
    stack.start()
    return from_reference(stack.endpoints)


def _locust_env(
    options: RunOptions, target: Target, profile_path: Path, out_dir: Path, run_id: str, workers: int
) -> dict[str, str]:
    return {
        **target.env,
        hs.PROFILE: str(profile_path),
        hs.RUN_ID: run_id,
        hs.OUT_DIR: str(out_dir),
        hs.WORKERS_EXPECTED: str(workers),
        hs.TARGET_LABEL: target.label,
        "HARNESS_CONFIRM_REMOTE": "1" if options.confirm_remote else "",
    }


# ---- test users ----


def needs_accounts(profile: Profile, fallback: bool) -> bool:
    """Whether the run's user classes play provisioned test users (the fallback load signs up its own)."""
    weights = profile.scenarios.weights()
    return not fallback and any(weights.get(name, 0) > 0 for name in ACCOUNT_CLASSES)


def users_needed(peak_users: int, workers: int, group_size: int) -> int:
    """Enough blocks for every worker's share of the peak plus one spare block each (harness/model/assign.py: a worker
    plays whole blocks, block b on worker b mod W)."""
    per_worker = math.ceil(max(peak_users, 1) / workers)
    return (math.ceil(per_worker / group_size) + 1) * group_size * workers


def _group_size() -> int:
    text = os.environ.get(GROUP_SIZE_VAR, "").strip()
    if not text:
        return DEFAULT_GROUP_SIZE
    if not text.isdigit() or int(text) < 2:
        raise ConfigError(f"{GROUP_SIZE_VAR}: {text!r} is not a whole number >= 2 (e.g. 4)")
    return int(text)


def _tag(run_id: str) -> str:
    """The run id as a users tag: lowercase letters, digits and '-', at most 40 characters."""
    return re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")[:40] or "run"


def _provision(
    target: Target, count: int, run_id: str, out_dir: Path, keep: bool, cleanup_stack: contextlib.ExitStack, log: TextIO
) -> Path:
    """Create the run's test users; their credentials go to out_dir/credentials.json (0600). Unless `keep`, the users
    and the file are removed when `cleanup_stack` unwinds, whatever the exit path."""
    assert target.config is not None
    group_size = _group_size()
    _say(log, f"provisioning {count} test users ({USERS_PREFIX}.{_tag(run_id)}.*) on {target.label}")
    credentials = provision(target.config, count, group_size, prefix=USERS_PREFIX, run_id=_tag(run_id))
    path = out_dir / CREDENTIALS_FILE
    if keep:
        credentials.save(path)
        _say(
            log,
            f"test users kept (--keep-users): {path}; remove them with `harness users cleanup --credentials {path}`",
        )
        return path
    cleanup_stack.callback(_remove_users, target, credentials, path, log)
    credentials.save(path)
    return path


def _remove_users(target: Target, credentials: Credentials, path: Path, log: TextIO) -> None:
    assert target.config is not None
    try:
        removed = cleanup(target.config, credentials)
        _say(log, f"removed {removed.users} test users and {removed.conversations} conversations")
    except HarnessError as exc:  # best effort: the run's verdict matters more; the prefix finds leftovers
        _say(log, f"warning: test users not removed ({exc}); run `harness users cleanup --prefix {USERS_PREFIX}`")
        return
    path.unlink(missing_ok=True)


# ---- user groups ----


def _group_workers(
    profile: Profile,
    workers: int,
    target: Target,
    paths: dict[str, china.GroupPath],
    out_dir: Path,
) -> tuple[WorkerGroup, ...]:
    """One worker set per user group: its own single-group profile, URLs (a Toxiproxy listener for shaped groups),
    viewer country (reference stack only) and, for a group in a namespace, `ip netns exec`."""
    split = china.worker_split(profile, workers)
    groups = []
    for name, count in split.items():
        group_path = out_dir / f"profile-{name}.json"
        data = profile_data(china.group_profile(profile, name, keep_country=target.reference))
        group_path.write_text(json.dumps(data, indent=2), encoding="utf-8")
        shaped = paths.get(name)
        urls = shaped.urls if shaped else {"SUPABASE_URL": target.url, **_livekit(target)}
        country = profile.groups[name].country if target.reference else None
        env = {
            hs.PROFILE: str(group_path),
            hs.HOST: urls["SUPABASE_URL"],
            **urls,
            "HARNESS_VIEWER_COUNTRY": country or "",
        }
        wrap = tuple(shaped.namespace.exec_argv([])) if shaped and shaped.namespace else ()
        groups.append(WorkerGroup(name, count, env, wrap))
    return tuple(groups)


def _livekit(target: Target) -> dict[str, str]:
    return {"LIVEKIT_URL": target.livekit_url} if target.livekit_url else {}


def _write_network(out_dir: Path, paths: dict[str, china.GroupPath], api_url: str, log: TextIO) -> dict[str, str]:
    """network.json (the applied profiles, sources, renderings); returns result.json's `network_profiles`."""
    if not paths:
        return {}
    (out_dir / NETWORK_FILE).write_text(json.dumps(china.describe(paths, api_url), indent=2, default=str), "utf-8")
    _say(log, f"applied network conditions recorded in {out_dir / NETWORK_FILE}")
    return {p.network.name: china.fingerprint(p.network) for p in paths.values()}


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
    network_profiles: dict[str, str] | None = None,
) -> Result:
    try:
        result = load_result(out_dir / hs.RESULT_FILE)
    except ConfigError as exc:
        print(f"harness: no result from the Locust master ({exc}); see {out_dir}/locust-master.log", file=log)
        result = _empty_result(run_id, profile, target_label, workers, reachable=True)
    smoke = [c.to_smoke_check() for c in checks]
    update: dict[str, Any] = {"smoke_checks": smoke, "partial": result.run.partial or interrupted}
    if network_profiles:
        update["network_profiles"] = {**result.run.network_profiles, **network_profiles}
    run = result.run.model_copy(update=update)
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
    """The whole run. Raises ConfigError before anything starts, TargetUnreachable (after reporting it),
    NetworkShapingError when shaping cannot be set up; cleans up everything it started on every path."""
    source = resolve_profile(options.profile)
    profile = effective_profile(load_profile(source), options, str(source))
    profile = china.with_network(profile, options.network)
    networks = china.shaped_networks(profile, options.overlays)
    if options.kernel:
        kernel.check_available()  # before anything starts: a clear NetworkShapingError for non-root users
    if options.kernel and not networks:
        raise ConfigError(
            f"--kernel: profile {profile.name} has no group to shape (every group is {china.DIRECT_NETWORK})"
        )
    locustfile, fallback = choose_locustfile(options.locustfile)
    if fallback:
        print(
            f"harness: light fallback load ({FALLBACK_LOCUSTFILE.name}); "
            f"gates off for lack of samples: {', '.join(FALLBACK_GATES_OFF)}",
            file=log,
        )
        profile = profile.model_copy(update={"gates": _without(profile.gates, FALLBACK_GATES_OFF)})
    multi_group = len(profile.groups) > 1 or bool(networks)
    workers = options.workers or profile.workers or os.cpu_count() or 1
    if multi_group:
        workers = sum(china.worker_split(profile, workers).values())
    run_id = options.run_id or f"{profile.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    out_dir = options.reports_dir / run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (hs.RESULT_FILE, hs.PROGRESS_FILE, NETWORK_FILE):
        (out_dir / stale).unlink(missing_ok=True)
    profile_path = out_dir / "profile.json"
    profile_path.write_text(json.dumps(profile_data(profile), indent=2), encoding="utf-8")

    checks: list[CheckResult] = []
    network_profiles: dict[str, str] = {}
    with StopRequest(log) as stop, contextlib.ExitStack() as cleanup_stack:
        target = _resolve_target(options, profile, cleanup_stack, out_dir)
        check_allowed(target, options.confirm_remote)
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
        env = _locust_env(options, target, profile_path, out_dir, run_id, workers)
        if not stop.requested and needs_accounts(profile, fallback):
            count = users_needed(profile.load.peak_users, workers, _group_size())
            credentials = _provision(target, count, run_id, out_dir, options.keep_users, cleanup_stack, log)
            env["HARNESS_CREDENTIALS"] = str(credentials.resolve())
        paths: dict[str, china.GroupPath] = {}
        if not stop.requested and networks:
            urls = {"SUPABASE_URL": target.url, **_livekit(target)}
            paths, api_url = china.open_paths(
                cleanup_stack, networks, urls, use_kernel=options.kernel, out_dir=out_dir, log=log
            )
            network_profiles = _write_network(out_dir, paths, api_url, log)
        interrupted = stop.requested
        if not interrupted:
            groups = _group_workers(profile, workers, target, paths, out_dir) if multi_group else ()
            namespaces = [p.namespace for p in paths.values() if p.namespace is not None]
            config = ClusterConfig(
                locustfile=locustfile,
                workers=workers,
                host="" if groups else target.url,
                out_dir=out_dir,
                env=env,
                bind_host=namespaces[0].host_addr if namespaces else "127.0.0.1",
                groups=groups,
            )
            with _cluster(config) as cluster:
                printer = ProgressPrinter(profile.name, log, options.progress_interval_s)
                interrupted = _watch(cluster, profile, stop, out_dir, printer)
    result = _collect(out_dir, profile, run_id, target.label, workers, checks, interrupted, log, network_profiles)
    return _report(result, out_dir, log)
