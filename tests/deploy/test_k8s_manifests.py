"""deploy/k8s and `harness k8s render | run`: every overlay renders with kubectl's built-in kustomize and passes
kubernetes-validate --strict; the overlays' profiles are the shipped ones; `harness k8s run` applies, follows the
master Job, reads its result back and exits with the verdict.

No cluster runs here: `harness k8s run` is driven by a stand-in kubectl (a script that records its arguments,
answers `get` and `logs` from canned data, and hands `kustomize` to the real kubectl)."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import yaml

from harness.deploy import k8s
from harness.model.profile import GatesConfig
from harness.model.result import ResultBuilder, RunInfo, dump_result
from harness.model.target_config import read_env_file
from tests.conftest import MotoServer

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
    # A Job ends when its pod's containers have ended: the harness must be the only long-running container, so
    # the Toxiproxy sidecar is a native sidecar (an init container that restarts Always, stopped with the pod).
    master_pod = master["spec"]["template"]["spec"]
    assert [c["name"] for c in master_pod["containers"]] == ["harness"]
    sidecars = [c for c in master_pod.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    assert [c["name"] for c in sidecars] == (["toxiproxy"] if overlay == "china" else [])
    for sidecar in sidecars:  # the harness starts once Toxiproxy's API answers
        assert sidecar["startupProbe"]["httpGet"] == {"path": "/version", "port": 8474}


MEASURED_USERS_PER_WORKER = 1_300
"""docs/BENCHMARKS.md, `harness load`: 2,600 users on two Locust workers, each at 36 % (mean) / 64 % (max) of a
core; the most users per worker the benchmarks have measured (docs/kubernetes.md, "Sizing")."""


@needs_kubectl
def test_the_large_overlay_plans_100000_users_within_the_measured_per_worker_load(tmp_path: Path) -> None:
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    shutil.copyfile(EXAMPLE_ENV, tree / "base" / "production.env")
    rendered = subprocess.run(["kubectl", "kustomize", str(tree / "overlays" / "large")], capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip
    docs = _docs(rendered.stdout)
    [profile_map] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("harness-prof")]
    users = tomllib.loads(profile_map["data"]["profile.toml"])["load"]["users"]
    workers = _job(docs, "harness-worker")["spec"]["parallelism"]
    assert users == 100_000
    assert users / workers <= MEASURED_USERS_PER_WORKER, f"{users / workers:.0f} users per worker: not measured"
    worker = _job(docs, "harness-worker")["spec"]["template"]["spec"]["containers"][0]
    assert worker["resources"]["requests"]["cpu"] == worker["resources"]["limits"]["cpu"] == "1"  # a whole core


@pytest.mark.parametrize(("overlay", "files"), [("smoke", {"profile.toml": "profiles/smoke.toml"}),
    ("load", {"profile.toml": "profiles/load.toml"}),
    ("china", {"profile.toml": "profiles/china.toml",
               "network.toml": "netem/cn-telecom-peak-to-tokyo.toml"})])  # fmt: skip
def test_the_overlays_carry_the_shipped_profiles(overlay: str, files: dict[str, str]) -> None:
    for name, shipped in files.items():
        assert (K8S / "overlays" / overlay / name).read_text() == (REPO / shipped).read_text(), (
            f"deploy/k8s/overlays/{overlay}/{name} differs from {shipped}: copy it again"
        )


@needs_kubectl
def test_render_sets_workers_image_namespace_run_id_and_profile_and_keeps_the_keys_out(tmp_path: Path) -> None:
    env_file = tmp_path / "prod.env"
    secret = "sb_secret_topsecret42"
    env_file.write_text(EXAMPLE_ENV.read_text().replace("SUPABASE_SERVICE_ROLE_KEY=sb_secret_REPLACE_ME",
                                                        f"SUPABASE_SERVICE_ROLE_KEY={secret}"))  # fmt: skip
    done = _harness("k8s", "render", "--profile", "smoke", "--workers", "3", "--env-file", str(env_file),
                    "--image", "registry.example/harness:9.9", "--namespace", "perf", "--run-id", "r1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert secret not in done.stdout and base64.b64encode(secret.encode()).decode() not in done.stdout
    docs = _docs(done.stdout)
    assert all(d["metadata"]["namespace"] == "perf" for d in docs)
    master, worker = _job(docs, "harness-master"), _job(docs, "harness-worker")
    container = master["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == worker["spec"]["template"]["spec"]["containers"][0]["image"]
    assert container["image"] == "registry.example/harness:9.9"
    assert container["args"][container["args"].index("--expect-workers") + 1] == "3"
    assert container["args"][container["args"].index("--run-id") + 1] == "r1"
    assert worker["spec"]["parallelism"] == worker["spec"]["completions"] == 3
    # The profile: the ConfigMap mounted at /etc/harness holds the named profile, and the master runs that file.
    [profile_map] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("harness-prof")]
    assert profile_map["data"]["profile.toml"] == (REPO / "profiles" / "smoke.toml").read_text()
    [volume] = [v for v in master["spec"]["template"]["spec"]["volumes"] if v["name"] == "profile"]
    assert volume["configMap"]["name"] == profile_map["metadata"]["name"]
    assert container["args"][:2] == ["run", "/etc/harness/profile.toml"]
    assert "Secret" not in {d["kind"] for d in docs}
    with_secret = _harness("k8s", "render", "--profile", "smoke", "--workers", "1", "--env-file", str(env_file),
                           "--include-secret")  # fmt: skip
    assert "Secret" in {d["kind"] for d in _docs(with_secret.stdout)}


@needs_kubectl
def test_the_master_reads_the_target_from_the_secrets_file(tmp_path: Path) -> None:
    """Without --env-file (or --host) a run starts its own embedded reference stack: the master must be given the
    Secret's production.env as a file, which it reads as on a laptop (quotes, `export`, comments), with the
    master's Service added to the file's own allow-list (the China group's path goes through it)."""
    env_file = tmp_path / "prod.env"
    env_file.write_text(
        'export SUPABASE_URL="https://proj.supabase.co"\n'
        "SUPABASE_ANON_KEY='sb_publishable_abc'  # the anon key\n"
        "HARNESS_ALLOW_HOSTS=proj.supabase.co"  # no newline at the end
    )
    done = _harness("k8s", "render", "--profile", "smoke", "--workers", "1", "--env-file", str(env_file),
                    "--include-secret")  # fmt: skip
    assert done.returncode == 0, done.stderr
    docs = _docs(done.stdout)
    pod = _job(docs, "harness-master")["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    path = Path(args[args.index("--env-file") + 1])
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == str(path.parent)]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    [secret] = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == volume["secret"]["secretName"]]
    seen = tmp_path / "pod" / path.name
    seen.parent.mkdir()
    seen.write_bytes(base64.b64decode(secret["data"][path.name]))
    assert read_env_file(seen) == {
        "SUPABASE_URL": "https://proj.supabase.co",
        "SUPABASE_ANON_KEY": "sb_publishable_abc",
        "HARNESS_ALLOW_HOSTS": "proj.supabase.co,harness-master",
    }
    assert "envFrom" not in pod["containers"][0] or all("secretRef" not in e for e in pod["containers"][0]["envFrom"])


def test_render_refuses_a_host_the_master_would_refuse_before_rendering(tmp_path: Path) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text(EXAMPLE_ENV.read_text().replace("LIVEKIT_URL=wss://your-livekit.example.com",
                                                        "LIVEKIT_URL=wss://livekit.elsewhere.example"))  # fmt: skip
    done = _harness("k8s", "render", "--profile", "smoke", "--workers", "1", "--env-file", str(env_file))
    assert done.returncode == 2 and done.stdout == ""
    assert f"LIVEKIT_URL ({env_file}): livekit.elsewhere.example is not a loopback address" in done.stderr
    assert "HARNESS_ALLOW_HOSTS" in done.stderr
    confirmed = _harness("k8s", "render", "--profile", "smoke", "--workers", "1", "--env-file", str(env_file),
                         "--confirm-remote")  # fmt: skip
    if shutil.which("kubectl") is not None:
        assert confirmed.returncode == 0, confirmed.stderr
        master = _job(_docs(confirmed.stdout), "harness-master")
        assert "--confirm-remote" in master["spec"]["template"]["spec"]["containers"][0]["args"]


@needs_kubectl
def test_render_shapes_the_china_group_with_the_profiles_own_network(tmp_path: Path) -> None:
    """The china overlay's master runs with --network /etc/harness/network.toml: for another profile that file must
    be the network its China group names, not the overlay's copy of cn-telecom-peak-to-tokyo."""
    profile = tmp_path / "offpeak.toml"
    china = (REPO / "profiles" / "china.toml").read_text()
    profile.write_text(china.replace('network = "cn-telecom-peak-to-tokyo"', 'network = "cn-telecom-offpeak-to-tokyo"'))
    done = _harness("k8s", "render", "--profile", str(profile), "--workers", "2", "--env-file", str(EXAMPLE_ENV))
    assert done.returncode == 0, done.stderr
    docs = _docs(done.stdout)
    [profile_map] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("harness-prof")]
    assert profile_map["data"]["network.toml"] == (REPO / "netem" / "cn-telecom-offpeak-to-tokyo.toml").read_text()
    args = _job(docs, "harness-master")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--network") + 1] == "/etc/harness/network.toml"
    two = tmp_path / "two.toml"
    two.write_text(china.replace('country = "SG"', 'country = "CN"'))  # baseline-lan and a China network
    refused = _harness("k8s", "render", "--profile", str(two), "--workers", "2", "--env-file", str(EXAMPLE_ENV))
    assert refused.returncode == 2 and "baseline-lan, cn-telecom-peak-to-tokyo" in refused.stderr


def test_the_docs_name_the_kubernetes_version_validated_here() -> None:
    assert f"kubernetes-validate --strict -k {KUBERNETES_VERSION}" in (REPO / "docs" / "kubernetes.md").read_text()


def test_the_default_allow_list_is_the_base_configmaps() -> None:
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    [settings] = [g for g in base["configMapGenerator"] if g["name"] == "harness-settings"]
    assert f"{k8s.ALLOW_VAR}={k8s.DEFAULT_ALLOW_HOSTS}" in settings["literals"]


def test_render_without_an_env_file_exits_2_naming_it(tmp_path: Path) -> None:
    done = _harness("k8s", "render", "--profile", "smoke", "--workers", "1", "--env-file", str(tmp_path / "none.env"))
    assert done.returncode == 2 and "none.env: no such file" in done.stderr


# ---- harness k8s run ------------------------------------------------------------------------------------------
# No cluster runs here, so `kubectl` is a stand-in: a script that records its arguments, hands `kustomize` to the
# real kubectl, and answers `delete`/`apply`/`get`/`logs` from canned data (KUBECTL_* variables): the Job's status
# as `get -o jsonpath={.status.succeeded},{.status.failed}` prints it, and a log with or without a result.json.

STAND_IN = """#!{python}
import os, sys
args = sys.argv[1:]
with open(os.environ["KUBECTL_LOG"], "a") as log:
    log.write(" ".join(args) + "\\n")
while args and args[0] == "--namespace":
    args = args[2:]
if args[0] == "kustomize":
    os.execvp("{kubectl}", ["kubectl", *args])
if args[0] == os.environ.get("KUBECTL_FAIL"):
    sys.exit("Unable to connect to the server: dial tcp 10.0.0.1:443: i/o timeout")
if args[0] == "apply":
    open(os.environ["KUBECTL_APPLIED"], "w").write(sys.stdin.read())
    print("job.batch/harness-master created")
elif args[0] == "get":
    print(os.environ["KUBECTL_JOB_STATUS"], end="")
elif args[0] == "logs":
    print("harness: run ...")
    if os.environ.get("KUBECTL_RESULT"):
        print("--- harness result.json begin ---")
        print(open(os.environ["KUBECTL_RESULT"]).read())
        print("--- harness result.json end ---")
"""


def _result(path: Path, p95_ms: float, run_id: str = "k8s-r") -> Path:
    builder = ResultBuilder(window_s=1)
    for i in range(50):
        builder.record("rest.read", "GET", "default", 100.0, True, 1_800_000_000 + i / 10)
    builder.record_cpu(1_800_000_000.5, 10.0, "worker-1")
    run = RunInfo(run_id=run_id, profile="p", started_s=1_800_000_000, ended_s=1_800_000_005, target="t",
                  workers_expected=1, workers_seen=1)  # fmt: skip
    return dump_result(builder.build(run, GatesConfig(p95_ms=p95_ms, min_rps=False)), path)


def _stand_in(tmp_path: Path, **canned: str) -> dict[str, str]:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(STAND_IN.format(python=sys.executable, kubectl=shutil.which("kubectl")))
    kubectl.chmod(0o755)
    return {"KUBECTL": str(kubectl), "KUBECTL_LOG": str(tmp_path / "calls.log"),
            "KUBECTL_APPLIED": str(tmp_path / "applied.yaml"), **canned}  # fmt: skip


def _k8s_run(env: dict[str, str], tmp_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "harness", "k8s", "run", "--profile", "smoke", "--workers", "2", "--env-file",
            str(EXAMPLE_ENV), "--kubectl", env["KUBECTL"], "--namespace", "perf", "--run-id", "k8s-r",
            "--reports-dir", str(tmp_path / "reports"), *extra]  # fmt: skip


def _verbs(tmp_path: Path) -> list[str]:
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert all(c.startswith("--namespace perf") for c in calls if not c.startswith("kustomize"))
    return [c.split()[2] for c in calls if not c.startswith("kustomize")]


@needs_kubectl
@pytest.mark.parametrize(("p95_ms", "status", "code"), [(2000, "1,", 0), (50, ",1", 1)])
def test_k8s_run_applies_follows_the_job_and_exits_with_the_verdict(
    tmp_path: Path, p95_ms: float, status: str, code: int
) -> None:
    env = _stand_in(tmp_path, KUBECTL_JOB_STATUS=status, KUBECTL_RESULT=str(_result(tmp_path / "r.json", p95_ms)))
    done = subprocess.run(_k8s_run(env, tmp_path, "--cleanup"), capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env}, check=False)  # fmt: skip
    assert done.returncode == code, done.stderr
    assert _verbs(tmp_path) == ["delete", "apply", "get", "logs", "delete"]
    assert "kind: Secret" in (tmp_path / "applied.yaml").read_text()  # applied (through stdin), never printed
    assert (tmp_path / "reports" / "k8s-r" / "report.html").is_file()
    assert "--- harness result.json begin ---" in (tmp_path / "reports" / "k8s-r" / "master.log").read_text()
    assert ("FAIL" in done.stdout.upper()) == (code == 1)


@needs_kubectl
def test_k8s_run_reads_the_result_from_s3_when_the_log_lacks_it(tmp_path: Path, moto_server: MotoServer) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url, region_name=moto_server.region)
    s3.create_bucket(Bucket="runs", CreateBucketConfiguration={"LocationConstraint": moto_server.region})
    s3.upload_file(str(_result(tmp_path / "r.json", 50)), "runs", "harness/k8s-r/result.json")
    env = _stand_in(tmp_path, KUBECTL_JOB_STATUS=",1")  # a log rotated away or cut: no result in it
    done = subprocess.run(_k8s_run(env, tmp_path, "--results-url", "s3://runs/harness", "--aws-endpoint-url",
                                   moto_server.endpoint_url), capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env}, check=False)  # fmt: skip
    assert done.returncode == 1, done.stderr  # the S3 copy's verdict: p95 over its 50 ms gate
    assert "--results-url" in (tmp_path / "applied.yaml").read_text()  # the master uploads there
    assert _verbs(tmp_path) == ["delete", "apply", "get", "logs"]  # no --cleanup: nothing deleted after the run


@needs_kubectl
def test_k8s_run_a_failed_job_whose_result_passed_is_not_green(tmp_path: Path) -> None:
    env = _stand_in(tmp_path, KUBECTL_JOB_STATUS=",1", KUBECTL_RESULT=str(_result(tmp_path / "r.json", 2000)))
    done = subprocess.run(_k8s_run(env, tmp_path), capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env}, check=False)  # fmt: skip
    assert done.returncode == 2 and "Failed although its result passed" in done.stderr


@needs_kubectl
def test_k8s_run_exits_2_when_the_cluster_is_unreachable(tmp_path: Path) -> None:
    env = _stand_in(tmp_path, KUBECTL_FAIL="delete", KUBECTL_JOB_STATUS="")
    done = subprocess.run(_k8s_run(env, tmp_path), capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env}, check=False)  # fmt: skip
    assert done.returncode == 2
    assert "Unable to connect to the server" in done.stderr and "Traceback" not in done.stderr
    assert _verbs(tmp_path) == ["delete"]  # nothing applied


def test_k8s_run_exits_2_when_kubectl_is_missing(tmp_path: Path) -> None:
    done = _harness("k8s", "run", "--profile", "smoke", "--workers", "1", "--env-file", str(EXAMPLE_ENV),
                    "--kubectl", str(tmp_path / "no-kubectl"))  # fmt: skip
    assert done.returncode == 2 and "no-kubectl: not found; install kubectl" in done.stderr


@needs_kubectl
@pytest.mark.parametrize("cleanup", [False, True])
def test_ctrl_c_while_following_deletes_nothing_unless_cleanup(tmp_path: Path, cleanup: bool) -> None:
    env = _stand_in(tmp_path, KUBECTL_JOB_STATUS="")  # the master Job never ends here
    argv = _k8s_run(env, tmp_path, *(["--cleanup"] if cleanup else []))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})  # fmt: skip
    try:
        for _ in range(600):  # until it follows the Job (its first `get`), at most 60 s
            calls = tmp_path / "calls.log"
            if calls.is_file() and " get " in calls.read_text():
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert _verbs(tmp_path)[-1] == ("delete" if cleanup else "get")
    assert ("deletes nothing without --cleanup" in err) == (not cleanup)


def test_the_base_carries_the_smoke_profile() -> None:
    assert (K8S / "base" / "profile.toml").read_text() == (REPO / "profiles" / "smoke.toml").read_text()
