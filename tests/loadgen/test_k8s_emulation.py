"""The Kubernetes topology as local processes: the master Job's and the worker Job's commands and environment,
taken from `harness k8s render`'s output, run here with the headless Service name mapped to 127.0.0.1 and the
ConfigMaps and Secret written where the pods would mount them. A verdict comes out with every worker counted.
(No cluster runs here; this proves the wiring: arguments, environment, names.)"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from loadgen_helpers import free_port_pair, write_profile

from harness.model.result import load_result

WORKERS = 2


def _pod_env(docs: list[dict], container: dict) -> dict[str, str]:  # type: ignore[type-arg]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source.get("secretRef") or source.get("configMapRef")
        [doc] = [d for d in docs if d["metadata"]["name"] == ref["name"] and d["kind"] in ("Secret", "ConfigMap")]
        data = doc.get("data", {})
        env.update({k: base64.b64decode(v).decode() if doc["kind"] == "Secret" else v for k, v in data.items()})
    env.update({e["name"]: e["value"] for e in container.get("env", [])})
    return env


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize is built into it)")
def test_the_rendered_master_and_worker_commands_give_a_verdict(tmp_path: Path, stack_env_file: Path) -> None:
    profile = write_profile(tmp_path / "k8s.toml", duration_s=6, extra="[gates]\nmin_rps = false\n")
    rendered = subprocess.run(
        [sys.executable, "-m", "harness", "k8s", "render", "--profile", str(profile), "--workers", str(WORKERS),
         "--env-file", str(stack_env_file), "--overlay", "smoke", "--run-id", "k8s-emulated", "--include-secret"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    jobs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Job"}
    master_pod, worker_pod = (jobs[n]["spec"]["template"]["spec"] for n in ("harness-master", "harness-worker"))
    master_c, worker_c = master_pod["containers"][0], worker_pod["containers"][0]

    # The pod's mounts, here: the profile ConfigMap's files, an empty reports folder.
    mounts = {m["name"]: m["mountPath"] for m in master_c["volumeMounts"]}
    etc = tmp_path / "etc-harness"
    etc.mkdir()
    [profile_map] = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("harness-profile")
    ]
    for name, text in profile_map["data"].items():
        (etc / name).write_text(text, encoding="utf-8")
    port = free_port_pair()
    local = {mounts["profile"]: str(etc), mounts["reports"]: str(tmp_path / "reports"), "0.0.0.0": "127.0.0.1"}

    def here(arg: str) -> str:
        for pod_path, path in local.items():
            arg = arg.replace(pod_path, path)
        return arg

    master_args = [here(a) for a in master_c["args"]] + ["--master-port", str(port)]
    master_env = {**os.environ, **_pod_env(docs, master_c)}
    master_env["HARNESS_ALLOW_HOSTS"] = ""  # the target is the loopback reference stack
    master = subprocess.Popen([sys.executable, "-m", "harness", *master_args], env=master_env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    service = jobs["harness-master"]["metadata"]["name"]
    worker_args = [("127.0.0.1" if a == service else a) for a in worker_c["args"]] + ["--master-port", str(port)]
    bare = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "SUPABASE_", "LIVEKIT_"))}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "harness", *worker_args],
            env=bare,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(jobs["harness-worker"]["spec"]["parallelism"])
    ]
    out, err = master.communicate(timeout=240)
    logs = [w.communicate(timeout=60)[0] for w in workers]
    assert master.returncode == 0, err[-3000:]  # the Job would end Complete
    assert [w.returncode for w in workers] == [0] * WORKERS, logs
    assert "--- harness result.json begin ---" in out
    result = load_result(tmp_path / "reports" / "k8s-emulated" / "result.json")
    assert (result.run.workers_expected, result.run.workers_seen) == (WORKERS, WORKERS)
