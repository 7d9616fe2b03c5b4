"""The run orchestrator: one profile in, one verdict and one report folder out.

    profile (+ CLI overrides) ─► target: --host/--env-file, or start the reference stack ─► safety + preflight
        ─► smoke checklist (smoke runs) ─► test users (credentials.json, 0600) ─► shaped paths for groups not on
        the direct network (harness/run/shaping.py: namespace, Toxiproxy, proxies, toxics) ─► Locust master + workers
        (one worker set per group in multi-group runs) ─► progress line every ~2 s on stderr
        ─► stop ─► the servers' delivery hop counts (hops.py) ─► collect result.json ─► gates ─► reports/<run-id>/
        ─► clean up (every exit path, in reverse: Locust, toxics, proxies, Toxiproxy, namespace, test users,
        reference stack)

The first SIGINT/SIGTERM stops the load gracefully and still reports (the result is marked partial, so the
verdict is invalid); a second one aborts at once. Children are stopped in `finally`, and die with this process
anyway (PR_SET_PDEATHSIG). Errors are raised (`harness.errors`); only the CLI turns them into exit codes.

One module per step: options.py (profile, overrides, locustfile), target.py (selection, safety, preflight),
smoke.py (checklist), accounts.py (test users), shaping.py (network paths), workers.py (Locust processes),
progress.py and signals.py (while it runs), collect.py (result, gates, reports). This module only sequences them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from harness.errors import ConfigError, TargetUnreachable
from harness.loadgen import env as hs
from harness.loadgen.cluster import EXPECT_WORKERS_MAX_WAIT_S, ClusterConfig
from harness.model.profile import Profile, load_profile, resolve_profile
from harness.model.result import CpuSample, NetworkConditions
from harness.model.run_ids import run_dir, safe_part
from harness.monitor import RunMonitor, exporting
from harness.network import kernel
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts
from harness.run import shaping as china
from harness.run.accounts import configured_group_size, needs_accounts, provision_for_run, users_needed, users_tag
from harness.run.collect import RunOutcome, collect, empty_result, print_checks, report
from harness.run.distributed import distributed_workers, master_ports, remote_workers
from harness.run.hops import ServerHops, fetch_server_hops
from harness.run.network_conditions import all_conditions
from harness.run.options import (
    FALLBACK_GATES_OFF,
    FALLBACK_LOCUSTFILE,
    RunOptions,
    choose_locustfile,
    effective_profile,
    profile_data,
    without_gates,
)
from harness.run.proc_cpu import ProcessCpu
from harness.run.progress import ProgressPrinter, watch
from harness.run.rate_preflight import check_rate
from harness.run.signals import StopRequest
from harness.run.smoke import CheckResult, run_checklist
from harness.run.target import Target, check_allowed, check_url, from_reference, preflight, resolve
from harness.run.workers import group_workers, livekit_urls, locust_env, running_cluster
from harness.scenarios import settings as scenario_env


def resolve_target(
    options: RunOptions, profile: Profile, cleanup: contextlib.ExitStack, out_dir: Path, log: TextIO = sys.stderr
) -> Target:
    if options.host or options.env_file or profile.target == "env":
        if options.migrations_dir is not None:
            raise ConfigError(
                "--migrations applies to the reference stack only; apply your migrations to a real project with "
                "`supabase db push`, or drop --host/--env-file to test them on the reference stack"
            )
        return resolve(options.host, options.env_file)
    print(f"harness: starting the reference stack (logs in {out_dir / 'stack'}/)", file=log, flush=True)
    config = StackConfig(ports=StackPorts.any(), log_dir=out_dir / "stack", migrations_dir=options.migrations_dir)
    stack = ReferenceStack(config)
    cleanup.callback(stack.stop)
    stack.start()
    return from_reference(stack.endpoints)


LOOPBACK = "127.0.0.1"


def run(
    options: RunOptions,
    log: TextIO = sys.stderr,
    *,
    profile: Profile | None = None,
    monitor: Callable[[Path], str | None] | None = None,
) -> RunOutcome:
    """The whole run. Raises ConfigError before anything starts, TargetUnreachable (after reporting it),
    NetworkShapingError when shaping cannot be set up; cleans up everything it started on every path.

    `profile` replaces options.profile's file (`harness capacity`'s stepped profile); `monitor(out_dir)`, called
    while the load runs, stops it early (cleanly, as a first Ctrl-C does) by returning the reason. With
    `options.metrics`, /metrics is served from before the target starts until the verdict (harness/monitor/)."""
    with exporting(options.metrics, log) as live:
        outcome = _run(options, log, live, profile, monitor)
        live.finish(outcome.verdict)
        return outcome


def _run(
    options: RunOptions,
    log: TextIO,
    live: RunMonitor,
    profile: Profile | None,
    monitor: Callable[[Path], str | None] | None,
) -> RunOutcome:
    if profile is None:
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
    if not fallback:  # a min_rps the users cannot produce: exit 2 before anything starts
        check_rate(profile, networks, log, users_overridden=options.users is not None)
    if fallback:
        print(
            f"harness: light fallback load ({FALLBACK_LOCUSTFILE.name}); "
            f"gates off for lack of samples: {', '.join(FALLBACK_GATES_OFF)}",
            file=log,
        )
        profile = profile.model_copy(update={"gates": without_gates(profile.gates, FALLBACK_GATES_OFF)})
    multi_group = len(profile.groups) > 1 or bool(networks)
    workers = options.workers or profile.workers or os.cpu_count() or 1
    if options.master:
        workers = distributed_workers(profile, options, multi_group)
    elif multi_group:
        workers = sum(china.worker_split(profile, workers).values())
    china.reap_leftovers(log)  # what killed runs left behind (a kill -9 runs no cleanup)
    run_id = options.run_id or f"{safe_part(profile.name)}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    out_dir = run_dir(options.reports_dir, run_id)  # --run-id ../x would write outside the reports dir: refused
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (hs.RESULT_FILE, hs.SNAPSHOT_FILE, hs.PROGRESS_FILE, china.NETWORK_FILE):
        (out_dir / stale).unlink(missing_ok=True)
    profile_path = out_dir / "profile.json"
    profile_path.write_text(json.dumps(profile_data(china.named_networks(profile)), indent=2), encoding="utf-8")

    checks: list[CheckResult] = []
    process_cpu: list[CpuSample] = []
    network_profiles: dict[str, str] = {}
    server_hops: ServerHops | None = None
    conditions: dict[str, NetworkConditions] = {}
    target_label, interrupted = "(not started)", False
    with StopRequest(log) as stop, _reported_on_abort(stop), contextlib.ExitStack() as cleanup_stack:
        ports = cleanup_stack.enter_context(master_ports(options))  # --master: taken ports fail before the target
        target = resolve_target(options, profile, cleanup_stack, out_dir, log)
        target_label = target.label
        live.begin(run_id, profile.name, target.label, out_dir / hs.PROGRESS_FILE)
        check_allowed(target, options.confirm_remote)
        advertise = china.advertise_host(options.toxiproxy_advertise_host)
        if networks and advertise:  # the workers would refuse a host the allow-list lacks: say it before the load
            check_url(target, "--toxiproxy-advertise-host", f"http://{advertise}", options.confirm_remote)
        print(
            f"harness: run {run_id}: profile {profile.name} against {target.label} with {workers} worker(s)", file=log
        )
        try:
            preflight(target)
        except TargetUnreachable as exc:
            report(empty_result(run_id, profile, target.label, workers, reachable=False), out_dir, log)
            exc.report_dir = out_dir  # the CLI still uploads / prints that report
            raise
        if options.checks and not stop.requested:
            checks = run_checklist(target, confirm_remote=options.confirm_remote)
            print_checks(checks, log)
        env = locust_env(options, target, profile_path, out_dir, run_id, workers)
        if not stop.requested and needs_accounts(profile, fallback):
            count = users_needed(profile.peak_users, workers, configured_group_size())
            credentials = provision_for_run(target, count, run_id, out_dir, options.keep_users, cleanup_stack, log)
            env[scenario_env.CREDENTIALS] = str(credentials.resolve())
        paths: dict[str, china.GroupPath] = {}
        if not stop.requested and networks:
            urls = {"SUPABASE_URL": target.url, **livekit_urls(target)}
            paths, api_url = china.open_paths(
                cleanup_stack,
                networks,
                urls,
                use_kernel=options.kernel,
                out_dir=out_dir,
                log=log,
                listen_host=options.toxiproxy_listen_host,
                advertise_host=advertise,
            )
            network_profiles = china.write_network(out_dir, paths, api_url, log)
            conditions = all_conditions(networks, kernel=options.kernel, url=target.url)
        interrupted = stop.requested
        if not interrupted:
            groups = group_workers(profile, workers, target, paths, out_dir) if multi_group else ()
            namespaces = [p.namespace for p in paths.values() if p.namespace is not None]
            config = ClusterConfig(
                locustfile=locustfile,
                workers=workers,
                host="" if groups else target.url,
                out_dir=out_dir,
                env=env,
                bind_host=options.master_bind
                if options.master
                else namespaces[0].host_addr
                if namespaces
                else "127.0.0.1",
                groups=groups,
                master_port=options.master_port if options.master else None,
                remote_workers=options.master,
                workers_wait_s=options.workers_wait_s if options.master else EXPECT_WORKERS_MAX_WAIT_S,
            )
            sampler = ProcessCpu().start()
            if ports is not None:
                ports.release_locust()  # the Locust master binds it next
            try:
                with running_cluster(config) as cluster, remote_workers(options, config, cluster, ports, log):
                    printer = ProgressPrinter(profile.name, log, options.progress_interval_s)
                    interrupted = watch(cluster, profile, stop, out_dir, printer, monitor)
                    live.stopping()
            finally:
                process_cpu = sampler.stop()
            # Before the reference stack stops; envelopes carry the users' tag of the run id (accounts.py).
            server_hops = fetch_server_hops(target, users_tag(run_id))
    result = collect(
        out_dir,
        profile,
        run_id,
        target_label,
        workers,
        checks,
        interrupted or stop.requested,
        log,
        network_profiles,
        server_hops,
        conditions,
    )
    result = result.model_copy(update={"process_cpu": process_cpu})
    outcome = report(result, out_dir, log)
    if stop.exit_code is not None:
        how = "aborted" if stop.aborted else "stopped"
        print(
            f"harness: {how} by {stop.signal_name}: the run is partial; report in {out_dir}/ (exit {stop.exit_code})",
            file=log,
        )
        outcome.signal_exit = stop.exit_code
    return outcome


@contextlib.contextmanager
def _reported_on_abort(stop: StopRequest) -> Iterator[None]:
    """A second signal's KeyboardInterrupt ends the run's steps here, once the clean-up inside has run: the run
    then reports what exists. Any other KeyboardInterrupt (no handler of ours caught it) goes on."""
    try:
        yield
    except KeyboardInterrupt:
        if not stop.aborted:
            raise
