"""`harness dr status | failover | failback | monitor`: the deployment guide's disaster-recovery script, in Python.

Every command acts on a topology (topology.py): `--reference` for the embedded stack of `harness target up`, or
`--home-url`, `--standby-url`, `--public-url` with the keys from the environment or `--env-file`. Traffic switches
are chosen with `--switch` (edge, route53, command). Actions print one JSON line per step on stdout and keep them
in `--state-dir`; exit 0 done, 1 a step failed, 2 refused or bad input (nothing changed).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from harness.dr import aws
from harness.dr.actions import DrContext, Outcome
from harness.dr.alerts import Alert, AlertSinks, publish
from harness.dr.edge import EdgeSwitch
from harness.dr.failback import failback
from harness.dr.failover import LagLimits, failover
from harness.dr.hooks import CommandSwitch
from harness.dr.journal import DEFAULT_STATE_DIR, Journal
from harness.dr.lock import DrLock
from harness.dr.monitor import MonitorSettings, monitor
from harness.dr.route53 import Route53Switch
from harness.dr.status import status
from harness.dr.switch import TrafficSwitch
from harness.dr.topology import JAPAN, SINGAPORE, Region, Topology
from harness.errors import ConfigError
from harness.model import keys
from harness.model.argtypes import positive_float, positive_int
from harness.model.hosts import is_loopback_url
from harness.model.target_config import Secret, read_env_file

REFERENCE = {"public": "http://127.0.0.1:54320", "home": "http://127.0.0.1:54321", "standby": "http://127.0.0.1:54322"}
"""`harness target up`'s default ports."""


def _common(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("topology")
    where.add_argument(
        "--reference",
        action="store_true",
        help="the embedded stack of `harness target up` (127.0.0.1:54320-54322, its demo keys)",
    )
    where.add_argument("--home-url", metavar="URL", help="home region, the normal primary (env HARNESS_DR_HOME_URL)")
    where.add_argument(
        "--standby-url", metavar="URL", help="standby region, promoted on failover (env SUPABASE_URL_JAPAN)"
    )
    where.add_argument("--public-url", metavar="URL", help="where users connect (env SUPABASE_URL)")
    where.add_argument("--home-region", default=SINGAPORE, help="home region's name (default: %(default)s)")
    where.add_argument("--standby-region", default=JAPAN, help="standby region's name (default: %(default)s)")
    where.add_argument(
        "--env-file",
        type=Path,
        metavar="FILE",
        help="production.env-style file with SUPABASE_URL, SUPABASE_URL_JAPAN, SUPABASE_ANON_KEY, "
        "SUPABASE_SERVICE_ROLE_KEY (wins over the environment)",
    )
    where.add_argument(
        "--timeout",
        type=positive_float,
        default=5.0,
        metavar="S",
        help="per-request timeout of probes and checks (default: %(default)s)",
    )
    where.add_argument("--confirm-remote", action="store_true", help="allow non-loopback regions and real AWS changes")
    traffic = parser.add_argument_group("traffic switch")
    traffic.add_argument(
        "--switch",
        action="append",
        choices=("edge", "route53", "command"),
        help="how traffic moves (repeatable; default: edge with --reference, route53 when "
        "--route53-zone-id is given, command when --switch-cmd is given)",
    )
    traffic.add_argument("--edge-url", metavar="URL", help="the reference edge's URL (default: --public-url)")
    traffic.add_argument(
        "--switch-cmd",
        metavar="CMD",
        help="shell command that moves traffic to $HARNESS_DR_REGION ($HARNESS_DR_REGION_URL)",
    )
    traffic.add_argument(
        "--promote-cmd",
        metavar="CMD",
        help="shell command that promotes $HARNESS_DR_REGION instead of its /_admin/promote",
    )
    Route53Switch.add_arguments(parser)
    aws.add_arguments(parser)
    AlertSinks.add_arguments(parser)
    parser.add_argument(
        "--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="journal, state and locks (default: %(default)s)"
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dr = subparsers.add_parser(
        "dr",
        help="disaster recovery: status, failover, failback, monitor",
        description="Fail the home region (Singapore) over to the standby (Japan) and back, by hand or "
        "automatically. Exit codes: 0 done, 1 a step failed, 2 refused or bad input (nothing changed).",
    )
    sub = dr.add_subparsers(title="dr commands", metavar="COMMAND", required=True)

    st = sub.add_parser("status", help="who is primary, the lag, where traffic goes, the last actions")
    _common(st)
    st.set_defaults(func=_status)

    fo = sub.add_parser("failover", help="promote the standby and move traffic to it (idempotent)")
    _common(fo)
    _action_flags(fo)
    fo.add_argument("--force", action="store_true", help="promote even when the standby is too far behind")
    fo.add_argument(
        "--no-fence", dest="fence", action="store_false",
        help="leave a still-answering old primary alone (default: it is made to follow the new primary)",
    )  # fmt: skip
    fo.add_argument(
        "--max-lag-bytes",
        type=int,
        default=LagLimits.max_bytes,
        metavar="N",
        help="refuse when the standby has more WAL than this to replay (default: %(default)s)",
    )
    fo.add_argument(
        "--max-lag-s",
        type=positive_float,
        default=LagLimits.max_s,
        metavar="S",
        help="refuse when the standby is this far behind (default: %(default)s)",
    )
    fo.set_defaults(func=_failover)

    fb = sub.add_parser("failback", help="re-sync the home region, then switch back to it with no write lost")
    _common(fb)
    _action_flags(fb)
    fb.add_argument(
        "--stable-for",
        type=positive_float,
        default=60.0,
        metavar="S",
        help="home must answer for this long before failing back (default: %(default)s)",
    )
    fb.set_defaults(func=_failback)

    mo = sub.add_parser("monitor", help="probe the primary; fail over after N failed rounds in a row")
    _common(mo)
    mo.add_argument("--interval", type=positive_float, default=5.0, metavar="S", help="seconds between probe rounds")
    mo.add_argument(
        "--failures",
        type=positive_int,
        default=3,
        metavar="N",
        help="failed rounds in a row that trigger a failover (default: %(default)s)",
    )
    mo.add_argument("--max-rounds", type=positive_int, metavar="N", help="stop after N rounds (default: until stopped)")
    mo.add_argument("--force", action="store_true", help="fail over even when the standby is too far behind")
    mo.set_defaults(func=_monitor)


def _action_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="journal what would be done; change nothing")
    parser.add_argument(
        "--verify-timeout",
        type=positive_float,
        default=60.0,
        metavar="S",
        help="how long the write check through --public-url keeps trying (default: %(default)s)",
    )


# -- building the context ---------------------------------------------------------------------------------------
def _values(args: argparse.Namespace) -> dict[str, str]:
    values = dict(os.environ)
    if args.env_file is not None:
        values |= read_env_file(args.env_file)
    return values


def topology_from_args(args: argparse.Namespace) -> Topology:
    if args.reference:
        urls = dict(REFERENCE)
        service, anon = keys.SERVICE_ROLE_KEY, keys.ANON_KEY
    else:
        env = _values(args)
        urls = {
            "home": args.home_url or env.get("HARNESS_DR_HOME_URL", ""),
            "standby": args.standby_url or env.get("SUPABASE_URL_JAPAN", ""),
            "public": args.public_url or env.get("SUPABASE_URL", ""),
        }
        flags = {"home": "--home-url (or HARNESS_DR_HOME_URL)", "standby": "--standby-url (or SUPABASE_URL_JAPAN)",
                 "public": "--public-url (or SUPABASE_URL)"}  # fmt: skip
        missing = [flags[name] for name, url in urls.items() if not url]
        if missing:
            raise ConfigError(f"no {', '.join(missing)}: give them, or --reference for the embedded stack")
        service, anon = env.get("SUPABASE_SERVICE_ROLE_KEY", ""), env.get("SUPABASE_ANON_KEY", "")
        if not service or not anon:
            raise ConfigError("SUPABASE_SERVICE_ROLE_KEY and SUPABASE_ANON_KEY must be set (environment or --env-file)")
    for name, url in urls.items():
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{name} URL {url!r} is not an http(s) URL (e.g. https://abc.supabase.co)")
        if not is_loopback_url(url) and not args.confirm_remote:
            raise ConfigError(f"{name} URL {url} is not loopback: add --confirm-remote to act on a real deployment")
    return Topology(
        home=Region(args.home_region, urls["home"]),
        standby=Region(args.standby_region, urls["standby"]),
        public_url=urls["public"].rstrip("/"),
        service_key=Secret(service),
        anon_key=Secret(anon),
        timeout_s=args.timeout,
    )


def _switches(args: argparse.Namespace, topology: Topology, journal: Journal, changes: bool) -> list[TrafficSwitch]:
    chosen = list(args.switch or [])
    if not chosen:
        chosen = (["edge"] if args.reference else []) + (["route53"] if args.route53_zone_id else [])
        chosen += ["command"] if args.switch_cmd else []
    switches: list[TrafficSwitch] = []
    for name in dict.fromkeys(chosen):
        if name == "edge":
            switches.append(EdgeSwitch(topology, args.edge_url))
        elif name == "command":
            if not args.switch_cmd:
                raise ConfigError("--switch command needs --switch-cmd CMD")
            regions = {topology.home.name: topology.home, topology.standby.name: topology.standby}
            switches.append(CommandSwitch(args.switch_cmd, regions, journal))
        else:
            settings = aws.from_args(args)
            if changes:
                aws.check_changes_allowed(settings, confirm_remote=args.confirm_remote, what="flip Route53 records")
            switch = Route53Switch.from_args(args, settings)
            if switch is None:
                raise ConfigError("--switch route53 needs --route53-zone-id, --route53-record and --route53-set")
            switches.append(switch)
    return switches


def context_from_args(args: argparse.Namespace, *, changes: bool) -> DrContext:
    topology = topology_from_args(args)
    journal = Journal(args.state_dir)
    ctx = DrContext(
        topology, journal, promote_cmd=args.promote_cmd, verify_timeout_s=getattr(args, "verify_timeout", 60.0)
    )
    ctx.switches = _switches(args, topology, journal, changes and not getattr(args, "dry_run", False))
    return ctx


# -- commands ----------------------------------------------------------------------------------------------------
def _alert(args: argparse.Namespace, outcome: Outcome) -> None:
    """Every DR action that changed something or failed is announced (SNS and/or Slack, when configured)."""
    sinks = AlertSinks.from_args(args, aws.from_args(args))
    if not sinks.enabled or outcome.dry_run or (outcome.ok and not outcome.changed):
        return
    steps = ", ".join(f"{s.name} {s.seconds:.1f} s" for s in outcome.steps if s.changed)
    figure = outcome.error if not outcome.ok else (steps or "no change")
    where = f"{args.home_region} → {args.standby_region}" if outcome.action == "failover" else args.home_region
    publish(
        Alert(f"dr {outcome.action}", where, figure or "", str(args.state_dir / "journal.jsonl"), outcome.ok), sinks
    )


def _alert_and_report(args: argparse.Namespace, outcome: Outcome) -> int:
    _alert(args, outcome)
    return _report(outcome)


def _report(outcome: Outcome) -> int:
    if outcome.ok:
        verb = "would be done (dry run)" if outcome.dry_run else "done" if outcome.changed else "nothing to do"
        print(f"harness dr {outcome.action}: {verb}", file=sys.stderr)
    else:
        kind = "refused" if outcome.refused else "FAILED"
        print(f"harness dr {outcome.action}: {kind}: {outcome.error}", file=sys.stderr)
    return outcome.exit_code


def _status(args: argparse.Namespace) -> int:
    ctx = context_from_args(args, changes=False)
    print(json.dumps(status(ctx), indent=2, default=str))
    return 0


def _act(args: argparse.Namespace, action: Callable[[DrContext], Outcome]) -> int:
    ctx = context_from_args(args, changes=True)
    with DrLock(ctx.journal.state_dir, "action"):
        outcome = action(ctx)
    _alert(args, outcome)
    return _report(outcome)


def _failover(args: argparse.Namespace) -> int:
    limits = LagLimits(max_bytes=args.max_lag_bytes, max_s=args.max_lag_s)
    return _act(
        args, lambda ctx: failover(ctx, force=args.force, dry_run=args.dry_run, limits=limits, fence=args.fence)
    )


def _failback(args: argparse.Namespace) -> int:
    return _act(args, lambda ctx: failback(ctx, stable_for_s=args.stable_for, dry_run=args.dry_run))


def _monitor(args: argparse.Namespace) -> int:
    ctx = context_from_args(args, changes=True)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _stop)
    settings = MonitorSettings(
        interval_s=args.interval, failures=args.failures, max_rounds=args.max_rounds, force=args.force
    )
    try:
        with DrLock(ctx.journal.state_dir, "monitor"):
            return monitor(ctx, settings, stop=stop, on_action=lambda outcome: _alert_and_report(args, outcome))
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
