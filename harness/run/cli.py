"""`harness smoke | load | china | soak | spike` and `harness run PROFILE.toml`: parse, build RunOptions, delegate.

Exit codes: 0 every gate passed, 1 a gate or smoke check failed, 2 invalid run or error.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from harness.dr.alerts import Alert, AlertSinks, publish
from harness.errors import ConfigError
from harness.refstack.postgres.migrations import check_folder
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


def parse_duration_s(text: str) -> float:
    """`30s`, `5m`, `1h`, `1500ms` or a bare number of seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(f"--duration: {text!r} is not a duration (e.g. 30s, 5m, 1h)")
    return float(match.group(1)) * _UNIT_S[match.group(2) or "s"]


def _positive_int(flag: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{flag}: {text!r} is not a whole number of at least 1 (e.g. {flag} 4)")
    return value


def _positive_float(flag: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ConfigError(f"{flag}: {text!r} is not a positive number (e.g. {flag} 10)")
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
    AlertSinks.add_arguments(parser)
    parser.set_defaults(func=_run, network=None, overlay=[], kernel=False)


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


def options_from(args: argparse.Namespace) -> RunOptions:
    return RunOptions(
        profile=args.profile,
        workers=_positive_int("--workers", args.workers) if args.workers is not None else None,
        duration_s=parse_duration_s(args.duration) if args.duration is not None else None,
        users=_positive_int("--users", args.users) if args.users is not None else None,
        spawn_rate=_positive_float("--spawn-rate", args.spawn_rate) if args.spawn_rate is not None else None,
        host=args.host,
        env_file=args.env_file,
        confirm_remote=args.confirm_remote,
        reports_dir=args.reports_dir,
        run_id=args.run_id,
        locustfile=args.locustfile,
        checks=args.checks,
        network=args.network,
        overlays=tuple(args.overlay),
        kernel=args.kernel,
        keep_users=args.keep_users,
        migrations_dir=check_folder(args.migrations) if args.migrations else None,
    )


def _run(args: argparse.Namespace) -> int:
    outcome = run(options_from(args))
    if outcome.verdict.status != "passed":  # a failed gate or an invalid run is announced, when sinks are set
        sinks = AlertSinks.from_args(args)
        if sinks.enabled:
            where = outcome.result.run.target
            figure = "; ".join(outcome.verdict.reasons)[:300] or outcome.verdict.status
            report = str(outcome.paths.get("html", outcome.out_dir))
            publish(Alert(f"{args.profile} run {outcome.verdict.status}", where, figure, report), sinks)
    return outcome.exit_code
