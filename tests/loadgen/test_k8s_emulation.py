"""The Kubernetes topology as local processes: the China overlay's master Job (with its Toxiproxy sidecar) and its
worker Job, their commands and environment taken from `harness k8s render`'s output and run here. The headless
Service name becomes 127.0.0.1, the pods' fixed ports (Locust 5557, metrics 9646, Toxiproxy 8474) become free
ones so parallel tests never collide, the ConfigMap's files and the Secret's values are written or set as the pod
would see them, and the embedded Toxiproxy stands in for the sidecar's image. A verdict comes out of the master's
log, read as `harness k8s run` reads `kubectl logs`, with every worker counted.

No cluster runs here: this proves the wiring (arguments, environment, names, mounts), not the scheduling, the
image or the cluster's DNS (docs/kubernetes.md, "What was and was not run here")."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml
from loadgen_helpers import free_port_pair

from harness.deploy.k8s import MASTER_SERVICE, extract_result
from harness.gates.verdict import evaluate
from harness.model.result import load_result, parse_result
from harness.model.target_config import read_env_file

WORKERS = 2  # one per group: slots follow the profile's groups (china, then baseline)
SHORT_CHINA = """window_s = 1
[load]
users = 6
spawn_rate = 6
duration_s = 8
[steady_state]
warmup_s = 2
cooldown_s = 1
[scenarios]
MessagingUser = 1
[groups.china]
network = "cn-telecom-peak-to-tokyo"
country = "CN"
weight = 1
[groups.baseline]
network = "baseline-lan"
country = "SG"
weight = 1
[gates]
min_rps = false
p95_ms = 20000
max_error_pct = 50
"""


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [int(s.getsockname()[1]) for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _pod_env(docs: list[dict], container: dict) -> dict[str, str]:  # type: ignore[type-arg]
    """The container's environment as the kubelet builds it: envFrom in order (a later source wins), then env."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source.get("secretRef") or source.get("configMapRef")
        [doc] = [d for d in docs if d["metadata"]["name"] == ref["name"] and d["kind"] in ("Secret", "ConfigMap")]
        data = doc.get("data", {})
        env.update({k: base64.b64decode(v).decode() if doc["kind"] == "Secret" else v for k, v in data.items()})
    env.update({e["name"]: e["value"] for e in container.get("env", [])})
    return env


def _scrape(url: str, master: subprocess.Popen[str], bodies: list[str]) -> None:
    """GET /metrics every half second while the master runs (at most 10 minutes), keeping each body."""
    for _ in range(1200):
        if master.poll() is not None:
            return
        try:
            reply = httpx.get(url, timeout=2)
            if reply.status_code == 200:
                bodies.append(reply.text)
        except httpx.HTTPError:
            pass  # not serving yet, or already closed
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize is built into it)")
def test_the_rendered_china_master_and_worker_commands_give_a_verdict(tmp_path: Path, stack_env_file: Path) -> None:
    profile = tmp_path / "short-china.toml"
    profile.write_text(SHORT_CHINA, encoding="utf-8")
    rendered = subprocess.run(
        [sys.executable, "-m", "harness", "k8s", "render", "--profile", str(profile), "--workers", str(WORKERS),
         "--env-file", str(stack_env_file), "--run-id", "k8s-emulated", "--include-secret"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    jobs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Job"}
    master_pod, worker_pod = (jobs[n]["spec"]["template"]["spec"] for n in ("harness-master", "harness-worker"))
    [master_c], [worker_c] = master_pod["containers"], worker_pod["containers"]
    [sidecar] = master_pod["initContainers"]  # a shaped profile picks the china overlay: Toxiproxy beside the master
    assert sidecar["restartPolicy"] == "Always"

    # The pod's volumes, here: the ConfigMap's files (profile, network profile), the Secret's file (the target), an
    # empty reports folder; each mount path becomes a local folder.
    local: dict[str, str] = {}
    for mount in master_c["volumeMounts"]:
        [volume] = [v for v in master_pod["volumes"] if v["name"] == mount["name"]]
        folder = tmp_path / "pod" / mount["name"]
        folder.mkdir(parents=True)
        local[mount["mountPath"]] = str(folder)
        source = volume.get("configMap", {}).get("name") or volume.get("secret", {}).get("secretName")
        for doc in docs:
            if doc["kind"] in ("ConfigMap", "Secret") and doc["metadata"]["name"] == source:
                for name, value in doc["data"].items():
                    data = base64.b64decode(value) if doc["kind"] == "Secret" else value.encode()
                    (folder / name).write_bytes(data)
    master_port = free_port_pair()
    metrics_port, toxiproxy_port = _free_ports(2)
    probe = sidecar["startupProbe"]["httpGet"]
    pod_ports = {"--metrics-port": str(metrics_port)}  # the value after each flag

    def here(args: list[str]) -> list[str]:
        out: list[str] = []
        for arg in args:
            if out and out[-1] in pod_ports:
                arg = pod_ports[out[-1]]
            for pod_path in sorted(local, key=len, reverse=True):  # a mount path, or a file under one
                if arg == pod_path or arg.startswith(f"{pod_path}/"):
                    arg = local[pod_path] + arg[len(pod_path) :]
                    break
            out.append({"0.0.0.0": "127.0.0.1", MASTER_SERVICE: "127.0.0.1"}.get(arg, arg))
        return out

    bare = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "SUPABASE_", "LIVEKIT_", "TOXI"))}
    master_env = {**bare, **_pod_env(docs, master_c)}  # HARNESS_ALLOW_HOSTS as rendered (loopback is always allowed)
    sidecar_url = f"http://127.0.0.1:{probe['port']}"
    assert master_env["TOXIPROXY_URL"] == sidecar_url  # the sidecar, in the pod's own network namespace
    master_env["TOXIPROXY_URL"] = f"http://127.0.0.1:{toxiproxy_port}"
    procs: list[subprocess.Popen[str]] = []
    try:
        procs.append(subprocess.Popen([sys.executable, "-m", "harness", "toxiproxy", "serve", "--port",
                                       str(toxiproxy_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      text=True))  # fmt: skip
        deadline = time.monotonic() + 60
        while True:  # the sidecar's startupProbe: the master container starts once it answers
            try:
                httpx.get(f"http://127.0.0.1:{toxiproxy_port}{probe['path']}", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the Toxiproxy stand-in never answered its startup probe"
                time.sleep(0.2)
        master = subprocess.Popen([sys.executable, "-m", "harness", *here(master_c["args"]), "--master-port",
                                   str(master_port), "--master-bind", "127.0.0.1"], env=master_env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        procs.append(master)
        worker_argv = [sys.executable, "-m", "harness", *here(worker_c["args"]), "--master-port", str(master_port)]
        for _ in range(jobs["harness-worker"]["spec"]["parallelism"]):
            procs.append(subprocess.Popen(worker_argv, env=bare, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True))  # fmt: skip
        workers = procs[2:]
        scrapes: list[str] = []
        scraper = threading.Thread(target=_scrape, args=(f"http://127.0.0.1:{metrics_port}/metrics", master, scrapes))
        scraper.start()  # Prometheus, scraping the port the Service names: it also ends the --metrics-linger
        log, _ = master.communicate(timeout=300)  # stdout and stderr together, as `kubectl logs` gives them
        scraper.join(timeout=30)
        try:
            worker_logs = [w.communicate(timeout=60)[0] for w in workers]
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"a worker did not end with the run: {exc.output!r}\n{log[-4000:]}") from None
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:  # a worker still waiting for a master that is gone
                proc.kill()
                proc.wait(timeout=10)
    assert master.returncode == 0, log[-3000:]  # the Job would end Complete
    assert any("harness_run_state" in body for body in scrapes), log[-3000:]
    assert "no scrape within" not in log  # the scrape of the finished state ended --metrics-linger
    assert [w.returncode for w in workers] == [0] * WORKERS, worker_logs  # the worker Job too
    text = extract_result(log)
    assert text is not None, log[-3000:]
    result = parse_result(text, "the master's log")
    assert result == load_result(Path(local["/reports"]) / "k8s-emulated" / "result.json")
    assert "starting the reference stack" not in log  # the target is the Secret's, not a stack of its own
    assert result.run.target == read_env_file(stack_env_file)["SUPABASE_URL"]
    assert (result.run.workers_expected, result.run.workers_seen) == (WORKERS, WORKERS)
    assert evaluate(result).exit_code == 0
    # The China group went through the sidecar's proxies, shaped by the ConfigMap's network profile file (--network).
    assert set(result.run.networks) == {"china"} and set(result.run.groups) == {"china", "baseline"}
    assert result.run.groups["china"].network == "cn-telecom-peak-to-tokyo"
    assert "--network" in master_c["args"]
