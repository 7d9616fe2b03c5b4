"""`harness gate` and `harness report`: parse, load, delegate. Exit codes: 0 passed, 1 failed, 2 invalid or error."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from harness.artifacts.s3 import downloaded, is_s3_url
from harness.dr import aws
from harness.gates.verdict import evaluate
from harness.model.profile import load_profile, resolve_profile
from harness.model.result import load_result
from harness.model.run_ids import run_dir
from harness.report import render_text, write_reports


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gate = subparsers.add_parser(
        "gate",
        help="re-evaluate the SLO gates of a result.json (exit 0 passed, 1 failed, 2 invalid)",
        description="Evaluates the gates recorded in RESULT (or those of --profile) and prints one line per gate.",
    )
    gate.add_argument(
        "result",
        metavar="RESULT.json",
        help="a result produced by `harness run` anywhere: a file, or s3://BUCKET/KEY.json, or an s3:// run folder",
    )
    gate.add_argument("--profile", help="take the gates from this profile (name or .toml path) instead of RESULT")
    aws.add_arguments(gate)
    gate.set_defaults(func=_gate)

    report = subparsers.add_parser(
        "report",
        help="write junit.xml, summary.md and report.html for a result.json",
        description="Writes the reports for RESULT; with --compare, also the changes and regressions against BASE.",
    )
    report.add_argument("result", metavar="RESULT.json", help="a file, s3://BUCKET/KEY.json or an s3:// run folder")
    report.add_argument(
        "--compare", metavar="BASE.json", help="a base result to show regressions against (file or s3://)"
    )
    report.add_argument(
        "--out", metavar="DIR", help="output folder (default: the folder of RESULT.json; for s3:// results: reports/)"
    )
    aws.add_arguments(report)
    report.set_defaults(func=_report)


def _local(text: str, args: argparse.Namespace, flag: str, stack: contextlib.ExitStack) -> Path:
    """A local path, or the result an s3:// URL names, downloaded to a temporary folder `stack` removes."""
    return stack.enter_context(downloaded(text, aws.from_args(args), flag)) if is_s3_url(text) else Path(text)


def _gate(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        result = load_result(_local(args.result, args, "RESULT", stack))
    gates = load_profile(resolve_profile(args.profile)).gates if args.profile else None
    verdict = evaluate(result, gates)
    sys.stdout.write(render_text(verdict))
    return verdict.exit_code


def _report(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        src = _local(args.result, args, "RESULT", stack)
        result = load_result(src)
        base = load_result(_local(args.compare, args, "--compare", stack)) if args.compare else None
        # A downloaded result's run id names the folder: checked as --run-id is (it came from elsewhere).
        default_out = (
            run_dir(Path("reports"), result.run.run_id, "run id of RESULT") if is_s3_url(args.result) else src.parent
        )
        out = Path(args.out) if args.out else default_out
        same_dir = out.resolve() == src.parent.resolve()
        paths = write_reports(
            result,
            out,
            base=base,
            step_summary=os.environ.get("GITHUB_STEP_SUMMARY") or None,
            write_result=not same_dir,
        )
    for kind, path in sorted(paths.items()):
        print(f"{kind}: {path}")
    return 0
