"""Distributed runs on Kubernetes: the kustomize manifests of deploy/k8s rendered for one run, and the run itself
(apply, follow the master Job, read its result back, gate it here). docs/kubernetes.md.

Rendering copies deploy/k8s to a temporary folder, puts the target's env file where the base's secretGenerator
reads it (it is never written into the checkout), adds a top kustomization (the chosen overlay, the profile in
the `harness-profile` ConfigMap, the worker count on both Jobs, the run id, the image, the namespace) and runs
`kubectl kustomize` (kustomize is built into kubectl). Patches are JSON, which kustomize reads as YAML.

The env file becomes the harness-target Secret as one file, which the master reads with `--env-file` exactly as
on a laptop; the target it names is checked first as the master will check it (keys, URLs, every host against
HARNESS_ALLOW_HOSTS): a refusal is exit 2 here, not a Failed Job later.
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
from harness.model.target_config import read_env_file, target_from_mapping
from harness.network import profiles as network_profiles
from harness.run import shaping

CHECKOUT_MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
OVERLAYS = ("smoke", "load", "china", "large")
MASTER_JOB, WORKER_JOB = "harness-master", "harness-worker"
MASTER_SERVICE = "harness-master"
"""The headless Service the workers (and the China group's Toxiproxy listeners) are reached through."""
ALLOW_VAR = "HARNESS_ALLOW_HOSTS"
DEFAULT_ALLOW_HOSTS = "*.supabase.co,harness-master"
"""The harness-settings ConfigMap's HARNESS_ALLOW_HOSTS (deploy/k8s/base/kustomization.yaml; a test compares):
what the master sees when production.env does not set its own."""
EXPECT_WORKERS_ARG = 4
"""Index of --expect-workers' value in the master's args (deploy/k8s/base/master-job.yaml)."""
IMAGE = "ghcr.io/harness-project/harness"
RESULT_BEGIN = "--- harness result.json begin ---"
RESULT_END = "--- harness result.json end ---"
POLL_S = 5.0
NETWORK_FILE = "network.toml"
"""The china overlay's network profile in the harness-profile ConfigMap (its master's --network /etc/harness/…)."""


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
    confirm_remote: bool = False
    manifests: Path = CHECKOUT_MANIFESTS


def default_overlay(profile_path: Path) -> str:
    """china for a profile that shapes a group (it needs the Toxiproxy sidecar), else load."""
    return "china" if shaping.shaped_networks(load_profile(profile_path)) else "load"


def china_network(profile_path: Path) -> Path:
    """The netem/ file of the profile's China groups (country CN), which the china overlay shapes them with."""
    profile = load_profile(profile_path)
    names = sorted({g.network for g in profile.groups.values() if g.country == shaping.CHINA_COUNTRY})
    if len(names) != 1:
        found = f"they name {', '.join(names)}" if names else "it has none"
        raise ConfigError(
            f"{profile_path}: the china overlay shapes the groups with country = {shaping.CHINA_COUNTRY!r} with one "
            f'network profile, and {found}; give them one network (e.g. network = "cn-telecom-peak-to-tokyo") or '
            "pick another --overlay"
        )
    network_profiles.load_profile(names[0])  # a ConfigError naming the known profiles when there is no such file
    return network_profiles.NETEM_DIR / f"{names[0]}.toml"


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
    secret_text, target_env = target_secret(options.env_file)
    check_target(target_env, options.env_file, confirmed=options.confirm_remote)
    profile_path = resolve_profile(options.profile)
    overlay = options.overlay or default_overlay(profile_path)
    if overlay not in OVERLAYS:
        raise ConfigError(f"--overlay {overlay!r}: one of {', '.join(OVERLAYS)}")
    with tempfile.TemporaryDirectory(prefix="harness-k8s-") as tmp:
        root = Path(tmp) / "k8s"
        shutil.copytree(options.manifests, root, ignore=shutil.ignore_patterns("production.env"))
        (root / "base" / "production.env").write_text(secret_text, encoding="utf-8")
        run_dir = root / "run"
        run_dir.mkdir()
        shutil.copyfile(profile_path, run_dir / "profile.toml")
        extra = []
        if overlay == "china":  # its master runs with --network /etc/harness/network.toml: the profile's own
            shutil.copyfile(china_network(profile_path), run_dir / NETWORK_FILE)
            extra.append(NETWORK_FILE)
        (run_dir / "kustomization.yaml").write_text(json.dumps(_kustomization(options, overlay, extra), indent=2))
        return _kubectl(kubectl, "kustomize", str(run_dir))


def target_secret(env_file: Path) -> tuple[str, dict[str, str]]:
    """The harness-target Secret's production.env, and the values the master will read from it: the file as written,
    plus one line adding the master's Service to its HARNESS_ALLOW_HOSTS when it lists hosts of its own (the China
    group's path goes through that Service; without a list of its own the ConfigMap's default has it)."""
    values = read_env_file(env_file)  # refuses a malformed file here, naming the line
    text = env_file.read_text(encoding="utf-8")
    listed = values.get(ALLOW_VAR)
    if listed is not None and MASTER_SERVICE not in (h.strip().lower() for h in listed.split(",")):
        values[ALLOW_VAR] = ",".join(h for h in (listed.strip().strip(","), MASTER_SERVICE) if h)
        ending = "" if text.endswith("\n") or not text else "\n"
        text += f"{ending}# added by harness k8s render: the master's Service\n{ALLOW_VAR}={values[ALLOW_VAR]}\n"
    return text, values


def check_target(values: dict[str, str], env_file: Path, *, confirmed: bool = False) -> None:
    """The target as the master pod will read it (the ConfigMap's default allow-list, the Secret's file over it),
    checked as the run checks it before its first request: ConfigError naming the file, variable and host."""
    target = target_from_mapping({ALLOW_VAR: DEFAULT_ALLOW_HOSTS, **values}, source=str(env_file))
    target.check_allowed(confirmed=confirmed, confirm_hint=f"--confirm-remote (or add it to {ALLOW_VAR} in {env_file})")


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
    if options.confirm_remote:
        master_args += [{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--confirm-remote"}]
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
