"""`harness deploy gate`: apply → wait → gate → rollback on red (harness/deploy/gate.py, docs/deploy-gate.md).

Exit codes: 0 the release passed every gate; 1 it was red and was rolled back (the previous release passes its
smoke run), or red with no --rollback; 2 apply failed, the rollback or its smoke failed, or an error; 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from harness.deploy.gate import GatePlan, GateRecord, run_gate, write_record
from harness.dr import aws
from harness.dr.alerts import Alert, AlertSinks, publish
from harness.errors import ConfigError
from harness.model.run_ids import check_run_id, run_dir
from harness.run.collect import RunOutcome
from harness.run.options import RunOptions
from harness.run.orchestrator import run


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deploy = subparsers.add_parser("deploy", help="the deployment gate: apply, wait, gate, roll back on red")
    actions = deploy.add_subparsers(dest="action", metavar="ACTION", title="deploy commands")
    gate = actions.add_parser(
        "gate",
        help="apply a release, wait for it, run the gate profile(s) against it, roll it back when red",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gate.add_argument("--apply", required=True, metavar="CMD", help="deploys the release, e.g. 'kubectl apply -k .'")
    gate.add_argument("--wait", metavar="CMD", help="waits until it is ready, e.g. 'kubectl rollout status deploy/app'")
    gate.add_argument(
        "--rollback", metavar="CMD", help="restores the previous release, e.g. 'kubectl rollout undo deploy/app'"
    )
    gate.add_argument("--profile", default="smoke", metavar="P[,P…]", help="gate profile(s), in order (default: smoke)")
    gate.add_argument(
        "--after-rollback", default="smoke", metavar="PROFILE", help="run after a rollback (default: smoke)"
    )
    gate.add_argument("--step-timeout", default="900", metavar="SECONDS", help="per command (default: %(default)s)")
    gate.add_argument("--host", metavar="URL", help="the deployment's SUPABASE_URL")
    gate.add_argument("--env-file", type=Path, metavar="FILE", help="the deployment's production.env")
    gate.add_argument("--confirm-remote", action="store_true", help="allow a target not listed in HARNESS_ALLOW_HOSTS")
    gate.add_argument("--reports-dir", type=Path, default=Path("reports"), metavar="DIR", help="default: reports")
    gate.add_argument("--gate-id", metavar="ID", help="the gate's folder under --reports-dir (default: generated)")
    AlertSinks.add_arguments(gate)
    aws.add_arguments(gate)
    gate.set_defaults(func=_gate)
    deploy.set_defaults(func=lambda _args: _usage(deploy))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _gate(args: argparse.Namespace) -> int:
    if not (args.host or args.env_file or os.environ.get("SUPABASE_URL")):
        raise ConfigError(
            "deploy gate: name the deployment to gate with --env-file production.env, --host URL or SUPABASE_URL "
            "(a gate against a reference stack it starts itself would prove nothing about the release)"
        )
    profiles = [p.strip() for p in args.profile.split(",") if p.strip()]
    if not profiles:
        raise ConfigError("--profile: give at least one profile, e.g. --profile smoke,load")
    try:
        timeout_s = float(args.step_timeout)
    except ValueError:
        timeout_s = 0.0
    if not 0 < timeout_s <= 86_400:
        raise ConfigError(f"--step-timeout: {args.step_timeout!r} is not a number of seconds up to 86400 (e.g. 600)")
    gate_id = (
        check_run_id(args.gate_id, "--gate-id") if args.gate_id else f"deploy-gate-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    out_dir = run_dir(args.reports_dir, gate_id, "--gate-id")
    plan = GatePlan(args.apply, profiles, args.wait, args.rollback, args.after_rollback, timeout_s)

    def run_profile(profile: str, run_id: str) -> RunOutcome:
        options = RunOptions(
            profile=profile, host=args.host, env_file=args.env_file, confirm_remote=args.confirm_remote,
            reports_dir=out_dir, run_id=run_id, checks=Path(profile).stem == "smoke",
        )  # fmt: skip
        return run(options)

    record = GateRecord(gate_id)
    try:
        run_gate(plan, record, run_profile, sys.stderr)
    except KeyboardInterrupt:
        record.outcome, record.exit_code = "interrupted: not rolled back (the operator decides)", 130
        raise
    finally:
        _, md = write_record(record, out_dir)
        print(f"harness: deploy gate: {record.outcome} (exit {record.exit_code}); {md}", file=sys.stderr)
    if record.exit_code != 0:
        sinks = AlertSinks.from_args(args)
        if sinks.enabled:
            target = args.host or str(args.env_file or os.environ.get("SUPABASE_URL"))
            publish(Alert("deploy gate red", target, record.outcome, str(md)), sinks)
    return record.exit_code
