"""`harness drill failover | recovery`: failover drills on the embedded reference stack.

Exit codes: 0 every gate passed, 1 a gate failed (RTO, RPO, error budget, reconnects, a recovery phase), 2 the
drill could not run or was interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.dr import aws
from harness.dr.alerts import Alert, AlertSinks, publish
from harness.model import limits
from harness.model.argtypes import at_most, positive_float, positive_int
from harness.model.drill import DrillResult
from harness.model.drill_profile import FAULTS, DrillProfile, load_drill_profile
from harness.model.run_ids import check_run_id
from harness.report.drill import write_drill_reports
from harness.run.drill import run_failover_drill
from harness.run.drill_recovery import run_recovery_drill
from harness.run.drill_rig import DrillOptions

_seconds = at_most(positive_float, limits.MAX_DURATION_S, "7 days (604800 s)")
_hold_seconds = at_most(positive_float, limits.MAX_STEP_S, "1 day (86400 s)")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="drill", help="drill profile name or .toml path (default: %(default)s)")
    commit = parser.add_mutually_exclusive_group()
    commit.add_argument("--sync", dest="synchronous", action="store_true", default=None,
                        help="synchronous replica: RPO must be 0 (the profile's default)")  # fmt: skip
    commit.add_argument("--async", dest="synchronous", action="store_false",
                        help="asynchronous replica: RPO is measured, gated only with --rpo-gate")  # fmt: skip
    parser.add_argument("--rpo-gate", type=int, metavar="N", help="most acknowledged messages that may be lost")
    parser.add_argument("--writers", type=positive_int, metavar="N", help="messaging users writing during the drill")
    parser.add_argument(
        "--replication-kbps", type=positive_int, metavar="KBPS",
        help="limit Singapore → Japan WAL shipping to KBPS KB/s (an asynchronous replica then falls behind, and a "
        "kill loses what was never shipped)",
    )  # fmt: skip
    parser.add_argument("--max-duration", type=_seconds, metavar="S", help="the drill stops by itself after S")
    parser.add_argument("--promote-cmd", metavar="CMD",
                        help="promote with this command instead of the region's admin API (`false` breaks the DR: "
                             "the drill must then fail)")  # fmt: skip
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"), help="default: %(default)s")
    parser.add_argument("--run-id", help="folder name under --reports-dir (default: drill-KIND-time-random)")
    AlertSinks.add_arguments(parser)
    aws.add_arguments(parser)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    drill = subparsers.add_parser(
        "drill", help="failover drills under load on the reference stack (RTO, RPO, reconnects, recovery test)",
        description="Fault Singapore under load and measure the failover to Japan. Exit codes: 0 every gate "
                    "passed, 1 a gate failed, 2 the drill could not run.",
    )  # fmt: skip
    sub = drill.add_subparsers(title="drill commands", metavar="COMMAND", required=True)
    fo = sub.add_parser("failover", help="fault Singapore under load; the DR monitor fails over; RTO and RPO")
    _common(fo)
    fo.add_argument("--fault", choices=FAULTS, help="kill, partition or slow (default: the profile's)")
    fo.add_argument("--fault-at", type=_seconds, metavar="S", help="seconds of load before the fault")
    fo.add_argument("--hold", type=_hold_seconds, metavar="S",
                    help="errors must stay under the gate this long for RTO to end (profile default: 30)")  # fmt: skip
    fo.add_argument("--rto-gate", type=positive_float, metavar="S", help="largest passing RTO in seconds")
    fo.set_defaults(func=_failover)
    rec = sub.add_parser("recovery", help="the monthly recovery test: fault, failover, smoke, failback, smoke")
    _common(rec)
    rec.set_defaults(func=_recovery)


def profile_from_args(args: argparse.Namespace) -> DrillProfile:
    profile = load_drill_profile(args.profile)
    drill: dict[str, Any] = {}
    overrides = (
        ("synchronous", "synchronous_commit"),
        ("fault", "fault"),
        ("fault_at", "fault_at_s"),
        ("hold", "hold_s"),
        ("max_duration", "max_duration_s"),
        ("replication_kbps", "replication_kbps"),
    )
    for arg, key in overrides:
        if getattr(args, arg, None) is not None:
            drill[key] = getattr(args, arg)
    update: dict[str, Any] = {"drill": profile.drill.model_copy(update=drill)}
    if args.writers is not None:
        update["load"] = profile.load.model_copy(update={"writers": args.writers})
    gates: dict[str, Any] = {}
    if getattr(args, "rto_gate", None) is not None:
        gates["rto_s"] = args.rto_gate
    if args.rpo_gate is not None:
        gates["rpo_messages"] = args.rpo_gate
    elif not update["drill"].synchronous_commit:
        gates["rpo_messages"] = None  # asynchronous replication may lose the last commits: measured, not gated
    update["gates"] = profile.gates.model_copy(update=gates)
    return profile.model_copy(update=update)


def _finish(args: argparse.Namespace, result: DrillResult, out_dir: Path) -> int:
    paths = write_drill_reports(result, out_dir)
    print(f"harness: drill {result.drill} ({result.fault}):", file=sys.stderr)
    for m in result.measures:
        value = "not measured" if m.value is None else f"{m.value:g} {m.unit}"
        gate = "" if m.gate is None else f" (gate ≤ {m.gate:g}: {'pass' if m.passed else 'FAIL'})"
        print(f"  {m.name:<22} {value}{gate}", file=sys.stderr)
    for phase in result.phases:
        print(f"  phase {phase.name:<22} {'ok' if phase.ok else 'FAILED'} {phase.seconds:.1f} s", file=sys.stderr)
    for error in result.errors:
        print(f"  INVALID: {error}", file=sys.stderr)
    verdict = {0: "PASSED", 1: "FAILED", 2: "INVALID"}[result.exit_code]
    print(f"harness: drill {verdict}; report: {paths.get('html', out_dir)}", file=sys.stderr)
    sinks = AlertSinks.from_args(args, aws.from_args(args))
    if sinks.enabled and result.exit_code != 0:
        failed = [m for m in result.measures if m.passed is False]
        figure = "; ".join(f"{m.name} {m.value if m.value is not None else 'not measured'} > {m.gate}" for m in failed)
        figure = figure or "; ".join(result.errors + [p.name for p in result.phases if not p.ok])
        publish(Alert(f"drill {result.drill} ({result.fault})", "reference stack", figure,
                      str(paths.get("html", out_dir)), ok=False), sinks)  # fmt: skip
    return result.exit_code


def drill_options(args: argparse.Namespace) -> DrillOptions:
    run_id = check_run_id(args.run_id) if args.run_id is not None else None  # before the profile or the stack
    return DrillOptions(reports_dir=args.reports_dir, run_id=run_id, promote_cmd=args.promote_cmd)


def _failover(args: argparse.Namespace) -> int:
    options = drill_options(args)
    result, out_dir = run_failover_drill(profile_from_args(args), options)
    return _finish(args, result, out_dir)


def _recovery(args: argparse.Namespace) -> int:
    options = drill_options(args)
    result, out_dir = run_recovery_drill(profile_from_args(args), options)
    return _finish(args, result, out_dir)
