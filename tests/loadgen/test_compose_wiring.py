"""docker-compose.yml, checked without a container engine: `docker-compose config` accepts it, and its services'
own commands and environment, run here as local processes, give a verdict. Each service name becomes 127.0.0.1
with its own free ports (a rewrite of the service's URLs and flags, so parallel tests never collide on the
compose file's fixed ports); the embedded Toxiproxy stands in for the real image. What the containers would add
(the image, DNS, the real Toxiproxy) is not run here (docs/compose.md)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from loadgen_helpers import free_port_pair

from harness.model.result import load_result

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
WORKERS = 2
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


def _ports(n: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
        ports.append(int(s.getsockname()[1]))
    for s in sockets:
        s.close()
    return ports


def _defaults(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR:-default} interpolation."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1)) or m.group(2), text)


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose (Debian package, scripts/install)")
def test_docker_compose_accepts_the_file() -> None:
    done = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True,
                          timeout=60, check=False, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_every_long_running_service_has_a_healthcheck_and_the_master_waits_for_them() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name in ("stack", "toxiproxy", "prometheus"):
        assert "healthcheck" in services[name], name
    assert services["master"]["depends_on"] == {
        "stack": {"condition": "service_healthy"}, "toxiproxy": {"condition": "service_healthy"}}  # fmt: skip
    assert services["toxiproxy"]["image"].startswith("ghcr.io/shopify/toxiproxy:")
    assert services["worker"]["environment"] == {}  # workers get everything from the master
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in services["grafana"]["volumes"]


@pytest.mark.slow
def test_the_services_commands_run_as_local_processes_give_a_verdict(tmp_path: Path) -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    edge, primary, replica, livekit, toxi, metrics = _ports(6)
    master_port = free_port_pair()
    url_map = {
        "http://stack:54320": f"http://127.0.0.1:{edge}", "http://stack:54322": f"http://127.0.0.1:{replica}",
        "ws://stack:7880": f"ws://127.0.0.1:{livekit}", "http://toxiproxy:8474": f"http://127.0.0.1:{toxi}",
    }  # fmt: skip
    profile = tmp_path / "short-china.toml"
    profile.write_text(SHORT_CHINA, encoding="utf-8")
    compose_env = {"HARNESS_PROFILE": str(profile), "HARNESS_WORKERS": str(WORKERS)}

    def env_of(service: dict) -> dict[str, str]:  # type: ignore[type-arg]
        env = {k: str(v) for k, v in (service.get("environment") or {}).items()}
        for key, value in env.items():
            for old, new in url_map.items():
                value = value.replace(old, new)
            env[key] = value
        base = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "SUPABASE_", "LIVEKIT_"))}
        return {**base, **env}

    def argv_of(service: dict, *extra: str) -> list[str]:  # type: ignore[type-arg]
        swap = {"0.0.0.0": "127.0.0.1", "stack": "127.0.0.1", "master": "127.0.0.1", "toxiproxy": "127.0.0.1",
                "/app/reports": str(tmp_path / "reports"), "9646": str(metrics)}  # fmt: skip
        args = [swap.get(_defaults(str(a), compose_env), _defaults(str(a), compose_env)) for a in service["command"]]
        return [sys.executable, "-m", "harness", *args, *extra]

    procs: list[subprocess.Popen[str]] = []
    try:
        stack_argv = argv_of(services["stack"], "--edge-port", str(edge), "--primary-port", str(primary),
                             "--replica-port", str(replica), "--livekit-port", str(livekit))  # fmt: skip
        procs.append(subprocess.Popen(stack_argv, env=env_of(services["stack"]), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, text=True))  # fmt: skip
        procs.append(subprocess.Popen([sys.executable, "-m", "harness", "toxiproxy", "serve", "--port", str(toxi)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True))  # fmt: skip
        test = services["stack"]["healthcheck"]["test"][1:]  # ["CMD", "curl", …]: run the same curl here
        health = [arg.replace("http://127.0.0.1:54320", f"http://127.0.0.1:{edge}") for arg in test]
        deadline = time.monotonic() + 90
        while subprocess.run(health, capture_output=True, check=False).returncode != 0:  # depends_on: healthy
            assert time.monotonic() < deadline, "the stack never became healthy"
            time.sleep(1)
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{toxi}/version", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "Toxiproxy never answered"
                time.sleep(0.5)
        master = subprocess.Popen(argv_of(services["master"], "--master-port", str(master_port)),
                                  env=env_of(services["master"]), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)  # fmt: skip
        workers = [subprocess.Popen(argv_of(services["worker"], "--master-port", str(master_port)),
                                    env=env_of(services["worker"]), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True) for _ in range(WORKERS)]  # fmt: skip
        _, err = master.communicate(timeout=300)
        logs = [w.communicate(timeout=60)[0] for w in workers]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
    assert master.returncode in (0, 1), err[-3000:]  # a verdict, not an invalid run
    assert [w.returncode for w in workers] == [0] * WORKERS, logs
    [run] = [p for p in (tmp_path / "reports").iterdir() if p.is_dir()]
    result = load_result(run / "result.json")
    assert (result.run.workers_expected, result.run.workers_seen) == (WORKERS, WORKERS)
    assert set(result.run.groups) == {"china", "baseline"}
    assert "cn-telecom-peak-to-tokyo" in (run / "network.json").read_text()  # the China path went through Toxiproxy
    origins: dict[str, int] = {}
    for window in result.windows:
        for stat in window.stats:
            if stat.group == "china":
                for region, count in stat.origins.items():
                    origins[region] = origins.get(region, 0) + count
    assert origins and max(origins, key=origins.__getitem__) == "ap-northeast-1", origins  # routed to Japan
