"""deploy/k8s and `harness k8s render | run`: every overlay renders with kubectl's built-in kustomize and passes
kubernetes-validate --strict; the overlays' profiles are the shipped ones; `harness k8s run` applies, follows the
master Job, reads its result back and exits with the verdict.

No cluster runs here: `harness k8s run` is driven by a stand-in kubectl (a script that records its arguments,
answers `get` and `logs` from canned data, and hands `kustomize` to the real kubectl)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.model.profile import GatesConfig
from harness.model.result import ResultBuilder, RunInfo, dump_result

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"  # docs/kubernetes.md names it
EXAMPLE_ENV = K8S / "base" / "production.env.example"
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize is built into it)")


def _harness(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def _docs(text: str) -> list[dict]:  # type: ignore[type-arg]
    return [d for d in yaml.safe_load_all(text) if d]


def _job(docs: list[dict], name: str) -> dict:  # type: ignore[type-arg]
    [job] = [d for d in docs if d["kind"] == "Job" and d["metadata"]["name"] == name]
    return job


@needs_kubectl
@pytest.mark.parametrize("overlay", ["smoke", "load", "china", "large"])
def test_every_overlay_renders_and_validates_strictly(tmp_path: Path, overlay: str) -> None:
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    shutil.copyfile(EXAMPLE_ENV, tree / "base" / "production.env")
    rendered = subprocess.run(["kubectl", "kustomize", str(tree / "overlays" / overlay)], capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    out = tmp_path / f"{overlay}.yaml"
    out.write_text(rendered.stdout)
    valid = subprocess.run(["kubernetes-validate", "--strict", "-k", KUBERNETES_VERSION, str(out)],
                           capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert valid.returncode == 0, valid.stdout + valid.stderr
    docs = _docs(rendered.stdout)
    master, worker = _job(docs, "harness-master"), _job(docs, "harness-worker")
    args = master["spec"]["template"]["spec"]["containers"][0]["args"]
    workers = int(args[args.index("--expect-workers") + 1])
    assert worker["spec"]["parallelism"] == worker["spec"]["completions"] == workers  # one verdict, all workers
    assert master["spec"]["backoffLimit"] == 0 and "ttlSecondsAfterFinished" in master["spec"]
    for job in (master, worker):
        pod = job["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
        assert all("limits" in c["resources"] and "requests" in c["resources"] for c in pod["containers"])
    names = [c["name"] for c in master["spec"]["template"]["spec"]["containers"]]
    assert ("toxiproxy" in names) == (overlay == "china")


@pytest.mark.parametrize(("overlay", "files"), [("smoke", {"profile.toml": "profiles/smoke.toml"}),
    ("load", {"profile.toml": "profiles/load.toml"}),
    ("china", {"profile.toml": "profiles/china.toml",
               "cn-telecom-peak-to-tokyo.toml": "netem/cn-telecom-peak-to-tokyo.toml"})])  # fmt: skip
def test_the_overlays_carry_the_shipped_profiles(overlay: str, files: dict[str, str]) -> None:
    for name, shipped in files.items():
        assert (K8S / "overlays" / overlay / name).read_text() == (REPO / shipped).read_text(), (
            f"deploy/k8s/overlays/{overlay}/{name} differs from {shipped}: copy it again"
        )


@needs_kubectl
def test_render_sets_workers_image_namespace_and_run_id_and_keeps_the_keys_out(tmp_path: Path) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text(
        EXAMPLE_ENV.read_text().replace("SUPABASE_SERVICE_ROLE_KEY=replace-me", "SUPABASE_SERVICE_ROLE_KEY=topsecret42")
    )
    done = _harness("k8s", "render", "--profile", "smoke", "--workers", "3", "--env-file", str(env_file),
                    "--image", "registry.example/harness:9.9", "--namespace", "perf", "--run-id", "r1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "topsecret42" not in done.stdout and "dG9wc2VjcmV0NDI" not in done.stdout  # nor its base64
    docs = _docs(done.stdout)
    assert all(d["metadata"]["namespace"] == "perf" for d in docs)
    master, worker = _job(docs, "harness-master"), _job(docs, "harness-worker")
    container = master["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/harness:9.9"
    assert container["args"][container["args"].index("--expect-workers") + 1] == "3"
    assert container["args"][container["args"].index("--run-id") + 1] == "r1"
    assert worker["spec"]["parallelism"] == 3
    assert "Secret" not in {d["kind"] for d in docs}
    with_secret = _harness("k8s", "render", "--profile", "smoke", "--workers", "1", "--env-file", str(env_file),
                           "--include-secret")  # fmt: skip
    assert "Secret" in {d["kind"] for d in _docs(with_secret.stdout)}


def test_render_without_an_env_file_exits_2_naming_it(tmp_path: Path) -> None:
    done = _harness("k8s", "render", "--profile", "smoke", "--workers", "1", "--env-file", str(tmp_path / "none.env"))
    assert done.returncode == 2 and "none.env: no such file" in done.stderr


STAND_IN = """#!{python}
import os, sys
args = sys.argv[1:]
with open(os.environ["KUBECTL_LOG"], "a") as log:
    log.write(" ".join(args) + "\\n")
while args and args[0] == "--namespace":
    args = args[2:]
if args[0] == "kustomize":
    os.execvp("{kubectl}", ["kubectl", *args])
if args[0] == "apply":
    open(os.environ["KUBECTL_APPLIED"], "w").write(sys.stdin.read())
    print("job.batch/harness-master created")
elif args[0] == "get":
    print(os.environ["KUBECTL_JOB_STATUS"], end="")
elif args[0] == "logs":
    print("harness: run ...\\n--- harness result.json begin ---")
    print(open(os.environ["KUBECTL_RESULT"]).read())
    print("--- harness result.json end ---")
"""


def _result(path: Path, p95_ms: float) -> Path:
    builder = ResultBuilder(window_s=1)
    for i in range(50):
        builder.record("rest.read", "GET", "default", 100.0, True, 1_800_000_000 + i / 10)
    builder.record_cpu(1_800_000_000.5, 10.0, "worker-1")
    run = RunInfo(run_id="k8s-r", profile="p", started_s=1_800_000_000, ended_s=1_800_000_005, target="t",
                  workers_expected=1, workers_seen=1)  # fmt: skip
    return dump_result(builder.build(run, GatesConfig(p95_ms=p95_ms, min_rps=False)), path)


@needs_kubectl
@pytest.mark.parametrize(("p95_ms", "code"), [(2000, 0), (50, 1)])
def test_k8s_run_applies_follows_the_job_and_exits_with_the_verdict(tmp_path: Path, p95_ms: float, code: int) -> None:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(STAND_IN.format(python=sys.executable, kubectl=shutil.which("kubectl")))
    kubectl.chmod(0o755)
    env = {
        "KUBECTL_LOG": str(tmp_path / "calls.log"),
        "KUBECTL_APPLIED": str(tmp_path / "applied.yaml"),
        "KUBECTL_JOB_STATUS": "1," if code == 0 else ",1",
        "KUBECTL_RESULT": str(_result(tmp_path / "result.json", p95_ms)),
    }
    done = _harness("k8s", "run", "--profile", "smoke", "--workers", "2", "--env-file", str(EXAMPLE_ENV),
                    "--kubectl", str(kubectl), "--namespace", "perf", "--run-id", "k8s-r",
                    "--reports-dir", str(tmp_path / "reports"), "--cleanup", env=env)  # fmt: skip
    assert done.returncode == code, done.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert [c.split()[2] for c in calls if not c.startswith("kustomize")] == [
        "delete",
        "apply",
        "get",
        "logs",
        "delete",
    ]
    assert all(c.startswith("--namespace perf") for c in calls if not c.startswith("kustomize"))
    assert "kind: Secret" in (tmp_path / "applied.yaml").read_text()  # applied (through stdin), never printed
    assert (tmp_path / "reports" / "k8s-r" / "report.html").is_file()
    assert ("FAIL" in done.stdout.upper()) == (code == 1)


def test_the_base_carries_the_smoke_profile() -> None:
    assert (K8S / "base" / "profile.toml").read_text() == (REPO / "profiles" / "smoke.toml").read_text()
