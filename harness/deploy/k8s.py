"""Distributed runs on Kubernetes: the kustomize manifests of deploy/k8s rendered for one run, and the run itself
(apply, follow the master Job, read its result back, gate it here). docs/kubernetes.md.

Rendering copies deploy/k8s to a temporary folder, puts the target's env file where the base's secretGenerator
reads it (it is never written into the checkout), adds a top kustomization (the chosen overlay, the profile in
the `harness-profile` ConfigMap, the worker count on both Jobs, the run id, the image, the namespace) and runs
`kubectl kustomize` (kustomize is built into kubectl). Patches are JSON, which kustomize reads as YAML.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from harness.errors import ConfigError, TargetUnreachable
from harness.model.profile import load_profile, resolve_profile
from harness.run import shaping

CHECKOUT_MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
OVERLAYS = ("smoke", "load", "china", "large")
MASTER_JOB, WORKER_JOB = "harness-master", "harness-worker"
EXPECT_WORKERS_ARG = 4
"""Index of --expect-workers' value in the master's args (deploy/k8s/base/master-job.yaml)."""
IMAGE = "ghcr.io/harness-project/harness"
RESULT_BEGIN = "--- harness result.json begin ---"
RESULT_END = "--- harness result.json end ---"
POLL_S = 5.0


@dataclass(frozen=True)
class RenderOptions:
    profile: str
    workers: int
    env_file: Path
    run_id: str
    overlay: str | None = None
    image: str | None = None
    namespace: str | None = None
    results_url: str | None = None
    manifests: Path = CHECKOUT_MANIFESTS


def default_overlay(profile_path: Path) -> str:
    """china for a profile that shapes a group (it needs the Toxiproxy sidecar), else load."""
    return "china" if shaping.shaped_networks(load_profile(profile_path)) else "load"


def render(options: RenderOptions, kubectl: str = "kubectl") -> str:
    """The manifests of one run, as `kubectl kustomize` prints them."""
    if not (options.manifests / "base" / "kustomization.yaml").is_file():
        raise ConfigError(
            f"no kustomize manifests at {options.manifests}: run from a checkout of harness (deploy/k8s) or pass "
            "--manifests DIR"
        )
    if not options.env_file.is_file():
        raise ConfigError(
            f"--env-file {options.env_file}: no such file; it becomes the harness-target Secret (SUPABASE_URL, keys; "
            f"see {options.manifests / 'base' / 'production.env.example'})"
        )
    profile_path = resolve_profile(options.profile)
    overlay = options.overlay or default_overlay(profile_path)
    if overlay not in OVERLAYS:
        raise ConfigError(f"--overlay {overlay!r}: one of {', '.join(OVERLAYS)}")
    with tempfile.TemporaryDirectory(prefix="harness-k8s-") as tmp:
        root = Path(tmp) / "k8s"
        shutil.copytree(options.manifests, root, ignore=shutil.ignore_patterns("production.env"))
        shutil.copyfile(options.env_file, root / "base" / "production.env")
        run_dir = root / "run"
        run_dir.mkdir()
        shutil.copyfile(profile_path, run_dir / "profile.toml")
        extra = sorted(p.name for p in (root / "overlays" / overlay).glob("*.toml") if p.name != "profile.toml")
        for name in extra:  # the overlay's network profiles stay in the ConfigMap (the china overlay's --network)
            shutil.copyfile(root / "overlays" / overlay / name, run_dir / name)
        (run_dir / "kustomization.yaml").write_text(json.dumps(_kustomization(options, overlay, extra), indent=2))
        return _kubectl(kubectl, "kustomize", str(run_dir))


def _kustomization(options: RenderOptions, overlay: str, extra_files: list[str]) -> dict[str, object]:
    master_args = [
        {
            "op": "replace",
            "path": f"/spec/template/spec/containers/0/args/{EXPECT_WORKERS_ARG}",
            "value": str(options.workers),
        },
        {"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--run-id"},
        {"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": options.run_id},
    ]
    if options.results_url:
        master_args += [
            {"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--results-url"},
            {"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": options.results_url},
        ]
    workers = [
        {"op": "replace", "path": "/spec/parallelism", "value": options.workers},
        {"op": "replace", "path": "/spec/completions", "value": options.workers},
    ]
    doc: dict[str, object] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [f"../overlays/{overlay}"],
        "configMapGenerator": [
            {"name": "harness-profile", "behavior": "replace", "files": ["profile.toml", *extra_files]}
        ],
        "patches": [
            {"target": {"kind": "Job", "name": MASTER_JOB}, "patch": json.dumps(master_args)},
            {"target": {"kind": "Job", "name": WORKER_JOB}, "patch": json.dumps(workers)},
        ],
    }
    if options.namespace:
        doc["namespace"] = options.namespace
    if options.image:
        name, _, tag = (
            options.image.rpartition(":") if ":" in options.image.rsplit("/", 1)[-1] else (options.image, "", "")
        )
        doc["images"] = [{"name": IMAGE, "newName": name, **({"newTag": tag} if tag else {})}]
    return doc


def without_secrets(manifests: str) -> str:
    """The manifests without their Secret documents (the target's keys), with a note where they were."""
    docs = manifests.split("\n---\n")
    kept = [d for d in docs if "\nkind: Secret\n" not in f"\n{d}\n"]
    note = "# Secret harness-target left out: kubectl create secret generic harness-target --from-env-file=FILE\n"
    return note + "\n---\n".join(kept) if len(kept) < len(docs) else manifests


def _kubectl(kubectl: str, *args: str, stdin: str | None = None, timeout_s: float = 120) -> str:
    if shutil.which(kubectl) is None:
        raise ConfigError(f"{kubectl}: not found; install kubectl (kustomize is built in) or pass --kubectl PATH")
    try:
        done = subprocess.run(
            [kubectl, *args], input=stdin, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise TargetUnreachable(f"kubectl {args[0]}: no answer within {timeout_s:g} s (cluster unreachable?)") from None
    if done.returncode != 0:
        raise TargetUnreachable(
            f"kubectl {' '.join(args[:2])} failed (exit {done.returncode}): {done.stderr.strip()[-800:]}"
        )
    return done.stdout


def extract_result(log: str) -> str | None:
    """The result.json the master printed with --print-result, or None."""
    if RESULT_BEGIN not in log:
        return None
    body = log.split(RESULT_BEGIN, 1)[1]
    return body.split(RESULT_END, 1)[0].strip() if RESULT_END in body else None


@dataclass(frozen=True)
class Cluster:
    kubectl: str = "kubectl"
    namespace: str | None = None

    def __call__(self, *args: str, stdin: str | None = None, timeout_s: float = 120) -> str:
        ns = ("--namespace", self.namespace) if self.namespace else ()
        return _kubectl(self.kubectl, *ns, *args, stdin=stdin, timeout_s=timeout_s)


def apply_and_follow(cluster: Cluster, manifests: str, deadline_s: float, log: TextIO) -> tuple[bool, str]:
    """Apply the run (a previous run's Jobs of the same names are deleted first: a Job's pod template cannot be
    changed), follow the master Job until it ends; (succeeded, the master's log)."""
    cluster("delete", "job", MASTER_JOB, WORKER_JOB, "--ignore-not-found", "--wait=true", timeout_s=300)
    print(cluster("apply", "-f", "-", stdin=manifests).strip(), file=log, flush=True)
    deadline = time.monotonic() + deadline_s
    last = ""
    while True:
        status = cluster("get", "job", MASTER_JOB, "-o", "jsonpath={.status.succeeded},{.status.failed}").strip()
        succeeded, _, failed = status.partition(",")
        if succeeded not in ("", "0") or failed not in ("", "0"):
            break
        if status != last:
            print(f"harness: k8s: job/{MASTER_JOB} running ({status or 'starting'})", file=log, flush=True)
            last = status
        if time.monotonic() >= deadline:
            raise TargetUnreachable(
                f"job/{MASTER_JOB} did not finish within {deadline_s:g} s; it keeps running in the cluster "
                f"(kubectl logs job/{MASTER_JOB} -c harness)"
            )
        time.sleep(POLL_S)
    return succeeded not in ("", "0"), cluster("logs", f"job/{MASTER_JOB}", "-c", "harness", timeout_s=300)
