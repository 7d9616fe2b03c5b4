"""`harness deploy gate`: apply → wait → gate → rollback on red (harness/deploy/gate.py, docs/deploy-gate.md).

Everything about the gate itself (profiles, target, safety rule, ids, timeout) is checked before --apply runs.
Exit codes as in DESCRIPTION.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

from harness.deploy.gate import GATE_ID_MAX, GatePlan, GateRecord, interruptible, run_gate, write_record
from harness.dr import aws
from harness.dr.alerts import Alert, AlertSinks, publish
from harness.errors import ConfigError
from harness.model.profile import load_profile, resolve_profile
from harness.model.run_ids import check_run_id, run_dir
from harness.model.target_config import Secret
from harness.run.collect import RunOutcome
from harness.run.options import RunOptions
from harness.run.orchestrator import run
from harness.run.target import Target, check_allowed, resolve

DESCRIPTION = """Deploys a release and decides whether it stays:

    --apply CMD ─► --wait CMD ─► each --profile against the deployment (first red one decides)
      green ─► exit 0
      red or invalid (or --wait failed) ─► --rollback CMD ─► --wait CMD ─► --after-rollback profile ─► exit 1

Exit codes: 0 every gate profile passed; 1 red and rolled back (the previous release passes its smoke run), or red
with no --rollback; 2 --apply failed (nothing deployed, nothing rolled back), the rollback, its wait or its smoke
failed (act now), or an error in the gate's own options (found before --apply runs); 130 Ctrl-C, 143 SIGTERM.

Ctrl-C or SIGTERM stops the step under way (a command's whole process group; a profile run stops as
`harness run` does, with a partial report) and ends the gate WITHOUT rolling back: an interrupted gate proves
nothing, so rolling back is the operator's call; deploy-gate.md says which step was cut short.

Commands run with `sh -c`, no stdin, in their own process group, killed after --step-timeout; their output is
streamed as [apply] …, [wait] …, [rollback] …. Command lines and output are redacted (tokens, keys, passwords,
URL credentials, the target's keys) before they are shown or written; still, keep secrets in the environment.
The target must be named (--env-file, --host or SUPABASE_URL): the deployment, not a stack the gate starts.
Report: REPORTS_DIR/GATE_ID/deploy-gate.md and deploy-gate.json, each run's folder beside them."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deploy = subparsers.add_parser("deploy", help="the deployment gate: apply, wait, gate, roll back on red")
    actions = deploy.add_subparsers(dest="action", metavar="ACTION", title="deploy commands")
    gate = actions.add_parser(
        "gate",
        help="apply a release, wait for it, run the gate profile(s) against it, roll it back when red",
        description=DESCRIPTION,
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
    gate.add_argument(
        "--step-timeout",
        default="900",
        metavar="SECONDS",
        help="each command's limit; then its process group is stopped and the step fails (default: %(default)s)",
    )
    gate.add_argument("--host", metavar="URL", help="the deployment's SUPABASE_URL")
    gate.add_argument("--env-file", type=Path, metavar="FILE", help="the deployment's production.env")
    gate.add_argument("--confirm-remote", action="store_true", help="allow a target not listed in HARNESS_ALLOW_HOSTS")
    gate.add_argument("--reports-dir", type=Path, default=Path("reports"), metavar="DIR", help="default: reports")
    gate.add_argument(
        "--gate-id", metavar="ID", help=f"the gate's folder under --reports-dir, up to {GATE_ID_MAX} characters "
        "(default: deploy-gate-<date>-<time>)",
    )  # fmt: skip
    AlertSinks.add_arguments(gate)
    aws.add_arguments(gate)
    gate.set_defaults(func=_gate)
    deploy.set_defaults(func=lambda _args: _usage(deploy))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _gate(args: argparse.Namespace) -> int:
    plan, gate_id, target = _checked_plan(args)
    out_dir = run_dir(args.reports_dir, gate_id, "--gate-id")

    def run_profile(profile: str, run_id: str) -> RunOutcome:
        options = RunOptions(
            profile=profile, host=args.host, env_file=args.env_file, confirm_remote=args.confirm_remote,
            reports_dir=out_dir, run_id=run_id, checks=Path(profile).stem == "smoke",
        )  # fmt: skip
        return run(options)

    record = GateRecord(gate_id)
    with interruptible() as quiet:
        try:
            run_gate(plan, record, run_profile, sys.stderr)  # an interruption ends it with 128 + the signal
        finally:
            quiet()  # the record is written and the alert sent whatever signal comes now
            _, md = write_record(record, out_dir)
            print(f"harness: deploy gate: {record.outcome} (exit {record.exit_code}); {md}", file=sys.stderr)
        if record.exit_code != 0:
            sinks = AlertSinks.from_args(args)
            if sinks.enabled:
                kind = "interrupted" if record.exit_code > 128 else _KIND[record.exit_code]
                publish(Alert(f"deploy gate {kind}", target.label, record.outcome, str(md)), sinks)
    return record.exit_code


_KIND = {1: "red", 2: "error"}


def _checked_plan(args: argparse.Namespace) -> tuple[GatePlan, str, Target]:
    """Everything that can be wrong with the gate itself, found before --apply changes anything: a typo found
    later would fail the gate run and roll back a release nobody tested."""
    if not (args.host or args.env_file or os.environ.get("SUPABASE_URL")):
        raise ConfigError(
            "deploy gate: name the deployment to gate with --env-file production.env, --host URL or SUPABASE_URL "
            "(a gate against a reference stack it starts itself would prove nothing about the release)"
        )
    profiles = [p.strip() for p in args.profile.split(",") if p.strip()]
    if not profiles:
        raise ConfigError("--profile: give at least one profile, e.g. --profile smoke,load")
    for flag, profile in [*(("--profile", p) for p in profiles), ("--after-rollback", args.after_rollback)]:
        try:
            load_profile(resolve_profile(profile))
        except ConfigError as err:
            raise ConfigError(f"{flag}: {err}") from None
    try:
        timeout_s = float(args.step_timeout)
    except ValueError:
        timeout_s = 0.0
    if not 0 < timeout_s <= 86_400:
        raise ConfigError(f"--step-timeout: {args.step_timeout!r} is not a number of seconds up to 86400 (e.g. 600)")
    if args.gate_id is not None:
        check_run_id(args.gate_id, "--gate-id")
        if len(args.gate_id) > GATE_ID_MAX:
            raise ConfigError(
                f"--gate-id: {len(args.gate_id)} characters; give at most {GATE_ID_MAX} (each run's folder adds "
                "-<step>-<profile> to it)"
            )
    gate_id = args.gate_id or f"deploy-gate-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    target = resolve(args.host, args.env_file)  # the file exists and holds a valid target
    check_allowed(target, args.confirm_remote)  # the safety rule, before the release is touched
    sinks = AlertSinks.from_args(args)
    hidden = [s.reveal() for s in _target_secrets(target)]
    hidden += [sinks.slack_webhook.reveal()] if sinks.slack_webhook else []
    plan = GatePlan(
        args.apply, profiles, args.wait, args.rollback, args.after_rollback, timeout_s, tuple(hidden)
    )  # fmt: skip
    return plan, gate_id, target


def _target_secrets(target: Target) -> list[Secret]:
    config = target.config
    if config is None:
        return []
    values = (config.anon_key, config.service_role_key, config.anon_key_japan, config.livekit_api_secret)
    return [v for v in values if v is not None]
