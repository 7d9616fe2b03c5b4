"""`harness k8s render | run`: a distributed run on Kubernetes (docs/kubernetes.md).

Exit codes of `run`: the verdict of the master's result (0 passed, 1 failed, 2 invalid) as `harness gate` gives
it; 2 when kubectl, the cluster or the result is missing, or when the master Job failed although its result passed
(an upload or reporting error after the gates: its log says which); 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness.artifacts.s3 import downloaded
from harness.deploy.k8s import (
    CHECKOUT_MANIFESTS,
    MASTER_JOB,
    OVERLAYS,
    WORKER_JOB,
    Cluster,
    RenderOptions,
    apply_and_follow,
    extract_result,
    render,
    without_secrets,
)
from harness.dr import aws
from harness.errors import ConfigError, HarnessError
from harness.gates.verdict import evaluate
from harness.model import limits
from harness.model.result import parse_result
from harness.model.run_ids import check_run_id, run_dir, safe_part
from harness.report import render_text, write_reports


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    k8s = subparsers.add_parser(
        "k8s",
        help="distributed runs on Kubernetes: render the manifests, or run and gate them (docs/kubernetes.md)",
        description="The master is a Job whose exit code is the verdict; workers are a Job of --workers pods.",
    )
    actions = k8s.add_subparsers(dest="action", metavar="ACTION", title="k8s commands")
    render_parser = actions.add_parser(
        "render",
        help="print the manifests of a run (kubectl kustomize)",
        description="Prints the run's manifests: deploy/k8s's overlay with the profile in the harness-profile "
        "ConfigMap, --workers on both Jobs, the image, namespace and run id. The env file is checked first as the "
        "master will check it (keys, URLs, every host against HARNESS_ALLOW_HOSTS). The harness-target Secret "
        "(the env file's keys) is left out unless --include-secret: create it with `kubectl create secret generic "
        "harness-target --from-env-file=FILE`. Nothing is applied.",
    )
    _add_common(render_parser)
    render_parser.add_argument(
        "--include-secret", action="store_true", help="also print the Secret (base64 keys: pipe it, never log it)"
    )
    render_parser.set_defaults(func=_render)
    run_parser = actions.add_parser(
        "run",
        help="apply the manifests, follow the master Job, read its result back and gate it here",
        description="Renders the run as `k8s render` does and applies it with kubectl (a previous run's "
        "harness-master/harness-worker Jobs in the namespace are deleted first: one run per namespace at a time), "
        "follows the master Job until it ends, reads result.json from its log (the master runs with "
        "--print-result; from --results-url when the log lacks it), gates it here, writes the reports under "
        "--reports-dir/<run-id>/ with master.log, and exits with the verdict: 0 passed, 1 a gate failed, 2 invalid "
        "run, no result, kubectl missing or the cluster unreachable. Ctrl-C stops following and deletes nothing "
        "unless --cleanup.",
    )
    _add_common(run_parser)
    run_parser.add_argument("--reports-dir", type=Path, default=Path("reports"), metavar="DIR", help="default: reports")
    run_parser.add_argument(
        "--timeout",
        default="7200",
        metavar="SECONDS",
        help="give up following the master Job after this long (default: %(default)s)",
    )
    run_parser.add_argument(
        "--cleanup",
        action="store_true",
        help="delete the Jobs at the end, whatever the outcome (also after Ctrl-C or --timeout); default: keep them "
        "(ttlSecondsAfterFinished removes them a day after they finish)",
    )
    aws.add_arguments(run_parser)
    run_parser.set_defaults(func=_run)
    k8s.set_defaults(func=lambda _args: _usage(k8s))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", required=True, help="profile name (profiles/) or .toml path")
    parser.add_argument("--workers", required=True, metavar="N", help="worker pods (one Locust worker, one core each)")
    parser.add_argument(
        "--env-file", type=Path, default=Path("production.env"), metavar="FILE",
        help="the target (SUPABASE_URL, keys, LIVEKIT_*), made the harness-target Secret (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--overlay", choices=OVERLAYS, help="default: china for a profile that shapes a group, else load"
    )
    parser.add_argument("--image", metavar="IMAGE[:TAG]", help="the harness image (default: the base's)")
    parser.add_argument("--namespace", metavar="NS", help="Kubernetes namespace (default: kubectl's)")
    parser.add_argument("--run-id", metavar="ID", help="the run's id (default: k8s-<profile>-<time>)")
    parser.add_argument(
        "--results-url",
        metavar="S3_URL",
        help="the master also uploads its reports to S3_URL/<run-id>/ (its pod needs AWS credentials: an IRSA "
        "role or AWS_* variables, docs/kubernetes.md); `k8s run` reads the result there when the master's log lacks it",
    )
    parser.add_argument(
        "--confirm-remote",
        action="store_true",
        help="allow every host of the target even if HARNESS_ALLOW_HOSTS does not list it (the master runs with "
        "--confirm-remote)",
    )
    parser.add_argument(
        "--manifests", type=Path, default=CHECKOUT_MANIFESTS, metavar="DIR", help="deploy/k8s (default: the checkout's)"
    )
    parser.add_argument("--kubectl", default="kubectl", metavar="PATH", help="kubectl to use (default: %(default)s)")


def _options(args: argparse.Namespace) -> RenderOptions:
    try:
        workers = int(args.workers)
    except ValueError:
        workers = 0
    if workers < 1:
        raise ConfigError(f"--workers: {args.workers!r} is not a whole number of at least 1 (e.g. --workers 4)")
    limits.check_at_most("--workers", args.workers, workers, limits.MAX_WORKERS, f"{limits.MAX_WORKERS:,} workers")
    name = Path(args.profile).stem if args.profile.endswith(".toml") else args.profile
    run_id = check_run_id(args.run_id) if args.run_id else f"k8s-{safe_part(name)}-{time.strftime('%Y%m%d-%H%M%S')}"
    return RenderOptions(
        profile=args.profile,
        workers=workers,
        env_file=args.env_file,
        run_id=run_id,
        overlay=args.overlay,
        image=args.image,
        namespace=args.namespace,
        results_url=args.results_url,
        confirm_remote=args.confirm_remote,
        manifests=args.manifests,
    )


def _render(args: argparse.Namespace) -> int:
    manifests = render(_options(args), args.kubectl)
    sys.stdout.write(manifests if args.include_secret else without_secrets(manifests))
    return 0


def _run(args: argparse.Namespace) -> int:
    options = _options(args)
    try:
        timeout_s = float(args.timeout)
    except ValueError:
        timeout_s = 0.0
    if not 0 < timeout_s < float("inf"):
        raise ConfigError(f"--timeout: {args.timeout!r} is not a positive number of seconds (e.g. --timeout 3600)")
    manifests = render(options, args.kubectl)
    cluster = Cluster(args.kubectl, options.namespace)
    ns = f" -n {options.namespace}" if options.namespace else ""
    print(
        f"harness: k8s run {options.run_id}: {options.workers} worker(s); its log: kubectl logs -f{ns} "
        f"job/{MASTER_JOB} -c harness",
        file=sys.stderr,
        flush=True,
    )
    try:
        return _follow_and_gate(args, options, cluster, manifests, timeout_s)
    except KeyboardInterrupt:
        if not args.cleanup:
            print(
                f"harness: k8s: the Jobs keep running (Ctrl-C deletes nothing without --cleanup); stop them with "
                f"kubectl delete{ns} job {MASTER_JOB} {WORKER_JOB}",
                file=sys.stderr,
            )
        raise
    finally:
        if args.cleanup:
            _delete_jobs(cluster)


def _follow_and_gate(
    args: argparse.Namespace, options: RenderOptions, cluster: Cluster, manifests: str, timeout_s: float
) -> int:
    succeeded, log = apply_and_follow(cluster, manifests, timeout_s, sys.stderr)
    out = run_dir(args.reports_dir, options.run_id)
    out.mkdir(parents=True, exist_ok=True)
    (out / "master.log").write_text(log, encoding="utf-8")
    text = extract_result(log)
    if text is None and options.results_url:
        with downloaded(f"{options.results_url.rstrip('/')}/{options.run_id}", aws.from_args(args)) as path:
            text = path.read_text(encoding="utf-8")
    if text is None:
        raise ConfigError(
            f"job/{MASTER_JOB} ended ({'Complete' if succeeded else 'Failed'}) without printing its result; its log "
            f"is in {out / 'master.log'}"
        )
    result = parse_result(text, "the master's result.json")
    verdict = evaluate(result)
    write_reports(result, out)
    sys.stdout.write(render_text(verdict))
    print(f"harness: k8s: reports in {out}/", file=sys.stderr)
    if not succeeded and verdict.exit_code == 0:
        # The gates passed but the master exited non-zero after them (an S3 upload or a report failed): the run did
        # not do what was asked, so it is not green (the same rule as the master's own exit code).
        print(
            f"harness: k8s: job/{MASTER_JOB} Failed although its result passed; see {out / 'master.log'}",
            file=sys.stderr,
        )
        return 2
    return verdict.exit_code


def _delete_jobs(cluster: Cluster) -> None:
    try:
        cluster("delete", "job", MASTER_JOB, WORKER_JOB, "--ignore-not-found")
        print(f"harness: k8s: deleted job/{MASTER_JOB} and job/{WORKER_JOB} (--cleanup)", file=sys.stderr)
    except HarnessError as exc:  # the outcome above stands; say what is left behind
        print(f"harness: k8s: --cleanup could not delete the Jobs: {exc}", file=sys.stderr)
