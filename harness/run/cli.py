"""`harness smoke | load | china | soak | spike` and `harness run PROFILE.toml`: parse, build RunOptions, delegate.

Exit codes: 0 every gate passed, 1 a gate or smoke check failed, 2 invalid run or error.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from pathlib import Path
from typing import Any

from harness.artifacts.s3 import ResultsStore
from harness.dr import aws
from harness.dr.alerts import Alert, AlertSinks, publish
from harness.errors import ConfigError, HarnessError, TargetUnreachable
from harness.model import limits
from harness.model.capacity import plan_levels
from harness.model.run_ids import check_run_id
from harness.monitor import MetricsOptions
from harness.refstack.postgres.migrations import check_folder
from harness.run import shaping as china_vars
from harness.run.capacity import CapacityOptions, run_capacity
from harness.run.options import RunOptions
from harness.run.orchestrator import run
from harness.run.target_cli import MIGRATIONS_HELP

PROFILE_COMMANDS = {
    "smoke": "functional checklist (health, sign-in, realtime message, meeting join, files, web shell, RLS, China "
    "routing) plus a short light load; about a minute",
    "load": "the deployment guide's SLOs: > 1,000 req/s, p95 < 2 s, errors < 5 percent over a 5-minute plateau",
    "china": "a China group via Japan against a baseline group: same SLOs, route share and p95 delta",
    "soak": "moderate load for an hour: leaks and drift",
    "spike": "a sudden 5x surge and back",
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration_s(
    text: str, flag: str = "--duration", most_s: float = limits.MAX_DURATION_S, shown: str = "7 days (168h)"
) -> float:
    """`30s`, `5m`, `1h`, `1500ms` or a bare number of seconds, at most `most_s` (model/limits.py)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(f"{flag}: {text!r} is not a duration (e.g. 30s, 5m, 1h)")
    seconds = float(match.group(1)) * _UNIT_S[match.group(2) or "s"]
    limits.check_at_most(flag, text, seconds, most_s, shown)
    return seconds


def _positive_int(flag: str, text: str, most: int, unit: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{flag}: {text!r} is not a whole number of at least 1 (e.g. {flag} 4)")
    limits.check_at_most(flag, text, value, most, f"{most:,} {unit}")
    return value


def _positive_float(flag: str, text: str, most: float, unit: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ConfigError(f"{flag}: {text!r} is not a positive number (e.g. {flag} 10)")
    limits.check_at_most(flag, text, value, most, f"{most:,.0f} {unit}")
    return value


def _add_network_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--network",
        metavar="PROFILE",
        help="network conditions of the China group (netem/PROFILE.toml; default: the profile's, "
        "cn-telecom-peak-to-tokyo in profiles/china.toml)",
    )
    parser.add_argument(
        "--overlay", action="append", default=[], metavar="X", help="stack an overlay on it (repeatable, in order)"
    )
    parser.add_argument(
        "--kernel",
        action="store_true",
        help="run the China group's workers in a network namespace with kernel packet loss (needs root)",
    )


def _add_run_arguments(parser: argparse.ArgumentParser, checks_default: bool) -> None:
    parser.add_argument("--workers", metavar="N", help="local Locust worker processes (default: one per CPU)")
    parser.add_argument("--duration", metavar="TIME", help="override the load duration (e.g. 30s, 5m)")
    parser.add_argument("--users", metavar="N", help="override the peak user count")
    parser.add_argument("--spawn-rate", metavar="N", help="override users started per second")
    parser.add_argument("--host", metavar="URL", help="target SUPABASE_URL (default: start the reference stack)")
    parser.add_argument("--env-file", type=Path, metavar="FILE", help="read the target from a production.env file")
    parser.add_argument(
        "--confirm-remote",
        action="store_true",
        help="allow load on a non-loopback target not listed in HARNESS_ALLOW_HOSTS",
    )
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"), metavar="DIR", help="default: reports")
    parser.add_argument("--run-id", metavar="ID", help="folder name under the reports dir (default: generated)")
    parser.add_argument("--locustfile", type=Path, metavar="FILE", help="default: locustfiles/mixed.py")
    parser.add_argument("--migrations", type=Path, metavar="DIR", help=f"with the reference stack: {MIGRATIONS_HELP}")
    parser.add_argument(
        "--checks",
        action=argparse.BooleanOptionalAction,
        default=checks_default,
        help=f"run the smoke checklist before the load (default: {'on' if checks_default else 'off'})",
    )
    parser.add_argument(
        "--keep-users", action="store_true", help="keep the provisioned test users (credentials.json in the report)"
    )
    _add_metrics_arguments(parser)
    parser.add_argument(
        "--results-url",
        metavar="S3_URL",
        help="also upload result.json, junit.xml, summary.md, report.html (and charts) to S3_URL/<run-id>/, e.g. "
        "s3://my-bucket/harness; checked before the run; a green run whose upload fails exits 2 "
        "(docs/running.md, Results in S3)",
    )
    AlertSinks.add_arguments(parser)
    aws.add_arguments(parser)
    _add_distributed_arguments(parser)
    parser.set_defaults(func=_run, network=None, overlay=[], kernel=False)


def _add_metrics_arguments(parser: argparse.ArgumentParser) -> None:
    metrics = parser.add_argument_group("Prometheus metrics while the run is live (docs/monitoring.md)")
    metrics.add_argument(
        "--metrics-port", metavar="PORT", help="serve http://ADDR:PORT/metrics (default: off; 0 = off; e.g. 9646)"
    )
    metrics.add_argument(
        "--metrics-bind",
        metavar="ADDR",
        help="address to listen on (default: 127.0.0.1; 0.0.0.0 with --master, for a Prometheus elsewhere)",
    )
    metrics.add_argument(
        "--metrics-linger",
        default="0",
        metavar="TIME",
        help="after the run, serve until Prometheus has scraped the verdict, at most this long (e.g. 30s; default 0)",
    )


def metrics_options(args: argparse.Namespace) -> MetricsOptions | None:
    """--metrics-port/--metrics-bind/--metrics-linger; None when the port is unset or 0."""
    port_text = args.metrics_port
    if port_text is None or port_text.strip() == "0":
        if args.metrics_bind is not None:
            raise ConfigError("--metrics-bind needs --metrics-port (e.g. --metrics-port 9646 --metrics-bind 0.0.0.0)")
        return None
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise ConfigError(f"--metrics-port: {port_text!r} is not a TCP port (1 to 65535, e.g. 9646; 0 = off)")
    bind = args.metrics_bind
    if bind is None:
        bind = "0.0.0.0" if getattr(args, "master", False) else "127.0.0.1"  # a Locust master serves workers elsewhere
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        raise ConfigError(
            f"--metrics-bind: {bind!r} is not an IP address to listen on (e.g. 127.0.0.1, 0.0.0.0 or ::)"
        ) from None
    linger = args.metrics_linger
    linger_s = 0.0 if linger.strip() in ("0", "0s") else parse_duration_s(linger, "--metrics-linger", 3600.0, "1 hour")
    return MetricsOptions(port=port, bind=bind, linger_s=linger_s)


RESULT_BEGIN = "--- harness result.json begin ---"
RESULT_END = "--- harness result.json end ---"


def _add_distributed_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "distributed (docs/running.md, Distributed runs)",
        "Start only the Locust master here and let remote `harness worker --master-host HOST` processes join.",
    )
    group.add_argument(
        "--master",
        action="store_true",
        help="start the Locust master only (target checks, test users, shaping, gates and reports as in a local run) "
        "and wait for --expect-workers remote workers; the ports hand out the target's keys and the test users' "
        "passwords: keep them inside the cluster network",
    )
    group.add_argument(
        "--expect-workers",
        metavar="N",
        help="with --master: workers the run waits for (default: 1); a profile with several user groups needs at "
        "least one per group, in proportion to the groups' weights (a count that does not fit names ones that do)",
    )
    group.add_argument(
        "--master-bind", default="0.0.0.0", metavar="ADDR", help="with --master: listen address (default: %(default)s)"
    )
    group.add_argument(
        "--master-port",
        default="5557",
        metavar="PORT",
        help="with --master: Locust's port for workers; the worker bootstrap answers on PORT+1 (default: %(default)s)",
    )
    group.add_argument(
        "--workers-wait", default="120", metavar="SECONDS", help="with --master: the run is invalid when its "
        "workers have not all joined by then (default: %(default)s)",
    )  # fmt: skip
    group.add_argument(
        "--print-result",
        action="store_true",
        help=f"print result.json on stdout at the end, between '{RESULT_BEGIN}' and '{RESULT_END}' (read back from "
        "a Kubernetes Job's log by `harness k8s run`)",
    )
    group.add_argument(
        "--toxiproxy-listen-host",
        metavar="HOST",
        help="where Toxiproxy (TOXIPROXY_URL's, else the embedded one) opens the China group's listeners, e.g. "
        f"0.0.0.0 for workers on other machines (default: {china_vars.TOXIPROXY_LISTEN_HOST_VAR}, else "
        "TOXIPROXY_URL's host, else 127.0.0.1)",
    )
    group.add_argument(
        "--toxiproxy-advertise-host",
        metavar="HOST",
        help="the host remote workers reach those listeners at, e.g. the Toxiproxy service's name; it must pass "
        f"the allow-list like the target's hosts (default: {china_vars.TOXIPROXY_ADVERTISE_HOST_VAR}, else the "
        "listen host)",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, summary in PROFILE_COMMANDS.items():
        parser = subparsers.add_parser(name, help=summary, description=f"Runs profiles/{name}.toml: {summary}.")
        parser.set_defaults(profile=name)
        _add_run_arguments(parser, checks_default=name == "smoke")
        if name == "china":
            _add_network_arguments(parser)
    any_profile = subparsers.add_parser(
        "run",
        help="run any profile (a name in profiles/ or a .toml path)",
        description="Runs PROFILE: load, gates and reports in reports/<run-id>/.",
    )
    any_profile.add_argument("profile", metavar="PROFILE", help="profile name or .toml path")
    _add_run_arguments(any_profile, checks_default=False)
    _add_network_arguments(any_profile)
    _register_capacity(subparsers)
    _register_worker(subparsers)


def _register_worker(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="Locust workers for a distributed run: join `harness run … --master` at --master-host",
        description="Starts --processes Locust workers that join the master at --master-host. Each gets its "
        "profile, target settings, test users and user group from the master (nothing else to configure); it ends "
        "when the master ends the run. Exit 0 normal end, 1 a worker failed, 2 no master within --connect-timeout "
        "or refused, 143/130 stopped by SIGTERM/Ctrl-C (docs/running.md, Distributed runs).",
    )
    parser.add_argument("--master-host", required=True, metavar="HOST", help="the master's host name or address")
    parser.add_argument(
        "--master-port", default="5557", metavar="PORT", help="the master's --master-port (default: %(default)s)"
    )
    parser.add_argument(
        "--processes", default="1", metavar="K", help="worker processes to start here (default: 1; one per core)"
    )
    parser.add_argument(
        "--connect-timeout", default="120", metavar="SECONDS", help="give up when the master has not answered by "
        "then (default: %(default)s); the master answers once its test users exist and its network is shaped",
    )  # fmt: skip
    parser.set_defaults(func=_worker)


def _worker(args: argparse.Namespace) -> int:
    from harness.run.worker import run_workers

    host = args.master_host.strip()
    if not host or any(c in host for c in "/@ ") or host.count(":") > 0:
        raise ConfigError(
            f"--master-host: {args.master_host!r} is not a host name or IPv4 address (e.g. harness-master)"
        )
    return run_workers(
        host,
        _port("--master-port", args.master_port),
        _positive_int("--processes", args.processes, limits.MAX_WORKERS, "worker processes"),
        _positive_float("--connect-timeout", args.connect_timeout, 3600, "seconds"),
        sys.stderr,
    )


CAPACITY_DESCRIPTION = """Steps the load up in one run and finds the highest step that passes the profile's gates.

Open model (a profile with [arrival]): --start/--step/--max give the total iterations/s; every [arrival] class's
rate is scaled by the same factor. Closed model: --users-start/--users-step/--users-max give the users.
Each step holds for --hold; its first --settle (or its users' ramp, if longer) is left out, and the rest is judged
by the profile's gates (min_rps aside). The run stops at the first step that fails a gate, or that is invalid
because the generator saturated (its CPU above gates.validity.max_cpu_pct): that is a harness limit, not the
target's. Writes capacity.md, capacity.json, capacity.svg and capacity.html beside the run's report.

Exit codes: 0 a sustainable level was found, 1 the first step already failed a gate, 2 invalid run or error."""


def _register_capacity(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "capacity",
        help="step the rate (or users) up until a gate breaks; report the sustainable level and the knee",
        description=CAPACITY_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("profile", nargs="?", default="load", metavar="PROFILE", help="profile name or .toml path")
    rate = parser.add_argument_group("open model (profiles with [arrival])")
    rate.add_argument("--start", metavar="R", help="first step's total iterations/s")
    rate.add_argument("--step", metavar="R", help="iterations/s added per step")
    rate.add_argument("--max", metavar="R", help="last step's iterations/s at most")
    rate.add_argument("--max-users", metavar="N", help="pool size of every [arrival] class (default: the profile's)")
    users = parser.add_argument_group("closed model")
    users.add_argument("--users-start", metavar="N", help="first step's users")
    users.add_argument("--users-step", metavar="N", help="users added per step")
    users.add_argument("--users-max", metavar="N", help="last step's users at most")
    parser.add_argument("--hold", default="30s", metavar="TIME", help="each step's length (default: 30s)")
    parser.add_argument("--settle", default="10s", metavar="TIME", help="left out at each step's start (default: 10s)")
    parser.add_argument("--workers", metavar="N", help="local Locust worker processes (default: one per CPU)")
    parser.add_argument("--host", metavar="URL", help="target SUPABASE_URL (default: start the reference stack)")
    parser.add_argument("--env-file", type=Path, metavar="FILE", help="read the target from a production.env file")
    parser.add_argument(
        "--confirm-remote", action="store_true", help="allow load on a non-loopback target not in HARNESS_ALLOW_HOSTS"
    )
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"), metavar="DIR", help="default: reports")
    parser.add_argument("--run-id", metavar="ID", help="folder name under the reports dir (default: generated)")
    parser.add_argument("--locustfile", type=Path, metavar="FILE", help="default: locustfiles/mixed.py")
    parser.add_argument("--keep-users", action="store_true", help="keep the provisioned test users")
    parser.set_defaults(func=_capacity)


def capacity_options_from(args: argparse.Namespace) -> CapacityOptions:
    rate_flags = ("--start", "--step", "--max")
    user_flags = ("--users-start", "--users-step", "--users-max")
    rate_values = (args.start, args.step, args.max)
    user_values = (args.users_start, args.users_step, args.users_max)
    given_rate, given_users = any(v is not None for v in rate_values), any(v is not None for v in user_values)
    if given_rate == given_users:
        raise ConfigError(
            "capacity: give either --start, --step and --max (iterations/s, open model) or --users-start, "
            "--users-step and --users-max (closed model), e.g. --start 100 --step 100 --max 1000"
        )
    flags, values = (rate_flags, rate_values) if given_rate else (user_flags, user_values)
    missing = [f for f, v in zip(flags, values, strict=True) if v is None]
    if missing:
        raise ConfigError(
            f"capacity: {', '.join(missing)} missing (e.g. {flags[0]} 100 {flags[1]} 100 {flags[2]} 1000)"
        )
    most, unit = (limits.MAX_RATE, "iterations/s") if given_rate else (limits.MAX_USERS, "users")
    start, step, maximum = (_positive_float(f, v, most, unit) for f, v in zip(flags, values, strict=True))
    hold_s = parse_duration_s(args.hold, "--hold", limits.MAX_STEP_S, "1 day (24h)")
    settle_s = (
        parse_duration_s(args.settle, "--settle", limits.MAX_STEP_S, "1 day (24h)")
        if args.settle not in ("0", "0s")
        else 0.0
    )
    return CapacityOptions(
        run=RunOptions(**_common_options(args)),
        mode="rate" if given_rate else "users",
        levels=plan_levels(start, step, maximum, flags=flags),
        hold_s=hold_s,
        settle_s=settle_s,
        max_users=_positive_int("--max-users", args.max_users, limits.MAX_USERS, "users")
        if args.max_users is not None
        else None,
    )


def _capacity(args: argparse.Namespace) -> int:
    return run_capacity(capacity_options_from(args))


def _common_options(args: argparse.Namespace) -> dict[str, Any]:
    """The RunOptions fields every run-like command (run, load, …, capacity) takes from the same flags."""
    return {
        "profile": args.profile,
        "workers": _positive_int("--workers", args.workers, limits.MAX_WORKERS, "local workers")
        if args.workers is not None
        else None,
        "host": args.host,
        "env_file": args.env_file,
        "confirm_remote": args.confirm_remote,
        "reports_dir": args.reports_dir,
        "run_id": check_run_id(args.run_id) if args.run_id is not None else None,
        "locustfile": args.locustfile,
        "keep_users": args.keep_users,
    }


def options_from(args: argparse.Namespace) -> RunOptions:
    return RunOptions(
        **_common_options(args),
        duration_s=parse_duration_s(args.duration) if args.duration is not None else None,
        users=_positive_int("--users", args.users, limits.MAX_USERS, "users") if args.users is not None else None,
        spawn_rate=_positive_float("--spawn-rate", args.spawn_rate, limits.MAX_SPAWN_RATE, "users started per second")
        if args.spawn_rate is not None
        else None,
        checks=args.checks,
        network=args.network,
        overlays=tuple(args.overlay),
        kernel=args.kernel,
        migrations_dir=check_folder(args.migrations) if args.migrations else None,
        metrics=metrics_options(args),
        **_distributed_options(args),
    )


def _distributed_options(args: argparse.Namespace) -> dict[str, Any]:
    if not args.master and args.expect_workers is not None:
        raise ConfigError("--expect-workers needs --master (a local run starts --workers N itself)")
    if args.master and args.workers is not None:
        raise ConfigError(
            "--workers with --master: the master starts no local workers; give the remote workers' count with "
            "--expect-workers N (e.g. --expect-workers 4)"
        )
    for flag, value in (
        ("--toxiproxy-listen-host", args.toxiproxy_listen_host),
        ("--toxiproxy-advertise-host", args.toxiproxy_advertise_host),
    ):
        if value is not None and (not value.strip() or any(c in value for c in "/:@ ")):
            raise ConfigError(f"{flag}: {value!r} is not a host name or IPv4 address (e.g. {flag} toxiproxy)")
    master_port = _port("--master-port", args.master_port)
    if master_port in (0, 65535):
        raise ConfigError("--master-port: give a fixed port below 65535 (remote workers must know it; e.g. 5557)")
    try:
        ipaddress.ip_address(args.master_bind)
    except ValueError:
        raise ConfigError(
            f"--master-bind: {args.master_bind!r} is not an IP address to listen on (e.g. 0.0.0.0 or 127.0.0.1)"
        ) from None
    return {
        "toxiproxy_listen_host": args.toxiproxy_listen_host,
        "toxiproxy_advertise_host": args.toxiproxy_advertise_host,
        "master": args.master,
        "expect_workers": _positive_int("--expect-workers", args.expect_workers, limits.MAX_WORKERS, "workers")
        if args.expect_workers is not None
        else 1,
        "master_bind": args.master_bind,
        "master_port": master_port,
        "workers_wait_s": _positive_int("--workers-wait", args.workers_wait, 3600, "seconds"),
    }


def _port(flag: str, text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ConfigError(f"{flag}: {text!r} is not a TCP port (0-65535, e.g. {flag} 9646)")
    return int(text)


def _run(args: argparse.Namespace) -> int:
    options = options_from(args)
    store = ResultsStore(args.results_url, aws.from_args(args)).check() if args.results_url else None
    try:
        outcome = run(options)
    except TargetUnreachable as exc:
        if exc.report_dir is not None:  # the report says the target did not answer: it goes where results go
            _deliver(args, store, exc.report_dir, exc.exit_code)
        raise
    code = outcome.exit_code
    if outcome.verdict.status != "passed":  # a failed gate or an invalid run is announced, when sinks are set
        sinks = AlertSinks.from_args(args)
        if sinks.enabled:
            where = outcome.result.run.target
            figure = "; ".join(outcome.verdict.reasons)[:300] or outcome.verdict.status
            report = str(outcome.paths.get("html", outcome.out_dir))
            publish(Alert(f"{args.profile} run {outcome.verdict.status}", where, figure, report), sinks)
    return _deliver(args, store, outcome.out_dir, code)


def _deliver(args: argparse.Namespace, store: ResultsStore | None, out_dir: Path, code: int) -> int:
    """The run's results to S3 (--results-url) and stdout (--print-result); returns the exit code to use."""
    if store is not None:
        code = _upload(store, out_dir, out_dir.name, code)
    result_file = out_dir / "result.json"
    if args.print_result and result_file.is_file():
        print(f"{RESULT_BEGIN}\n{result_file.read_text(encoding='utf-8').strip()}\n{RESULT_END}", flush=True)
    return code


def _upload(store: ResultsStore, out_dir: Path, run_id: str, code: int) -> int:
    """Upload the reports; a failed upload is loud, and turns a green exit into 2 (the pipeline asked for the
    results there and would otherwise gate on nothing); a red or interrupted run keeps its own code."""
    try:
        url, names = store.upload_run(out_dir, run_id)
    except HarnessError as err:
        new_code = 2 if code == 0 else code
        kept = "turns the passed run's exit 0 into 2" if code == 0 else f"the run's own exit {code} stands"
        print(f"harness: error: results not uploaded: {err} (the verdict above stands; {kept})", file=sys.stderr)
        return new_code
    print(f"harness: results uploaded to {url}/ ({', '.join(names)})", file=sys.stderr)
    return code
