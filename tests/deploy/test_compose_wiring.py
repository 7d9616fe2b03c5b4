"""docker-compose.yml's wiring, proven by running its services' own commands as local processes (no container engine
here; tests/compose_emulation.py maps each service to its own loopback address and says exactly what is rewritten).

    livekit, regions, edge      the image's entrypoint + the service's command and environment
    toxiproxy                   the embedded Toxiproxy (`harness toxiproxy serve`) standing in for the real image
    master, worker × N          a short China profile (HARNESS_PROFILE, as a user would set it): the verdict, the
                                worker count, the China group through Toxiproxy to Japan, the master's /metrics

Each piece must pass its own healthcheck command, in the order depends_on gives; then the addresses the commands
pass each other are checked to be the ones traffic really takes. Prometheus and Grafana (other images) are not run.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from harness.model.result import load_result
from harness.procs.child import die_with_parent
from tests.deploy.compose_emulation import (
    Network,
    harness_argv,
    is_harness,
    load,
    mounted,
    process_env,
    service_env,
)
from tests.refstack.region.conftest import create_conversation, create_user, user_headers

STACK = ("livekit", "regions", "edge", "toxiproxy")
WORKERS = 2
RUN_TIMEOUT_S = 300.0
SHORT_CHINA = """description = "profiles/china.toml's groups, a few users for a few seconds"
window_s = 1
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
STOP_TIMEOUT_S = 20.0
HEALTH_POLL_S = 0.5


def _duration_s(text: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0}
    for unit in ("ms", "s", "m"):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "").isdigit():
            return float(text[: -len(unit)]) * units[unit]
    raise ValueError(f"not a compose duration: {text!r}")


@dataclass
class Running:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        """SIGTERM to the process (what `docker stop` does to the container), SIGKILL to its session after 20 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)


@dataclass
class Emulation:
    compose: dict[str, Any]
    network: Network
    root: Path
    running: dict[str, Running] = field(default_factory=dict)

    @property
    def services(self) -> dict[str, Any]:
        return dict(self.compose["services"])

    def argv(self, name: str) -> list[str]:
        service = self.services[name]
        command = self.network.command(name, list(service.get("command") or []))
        command = mounted(command, service, self.network, self.root / "volumes")
        if is_harness(service):
            return harness_argv(command)
        if name == "toxiproxy":  # the real image's `-host=ADDR` on its default API port 8474
            (host,) = [a.removeprefix("-host=") for a in command if a.startswith("-host=")]
            return harness_argv(["toxiproxy", "serve", "--bind", host, "--port", "8474"])
        raise AssertionError(f"{name}: no local stand-in for image {service.get('image')}")

    def start(self, name: str, instance: str | None = None) -> Running:
        instance = instance or name
        workdir = self.root / instance  # the image's WORKDIR /app: reports/ lands here
        workdir.mkdir(parents=True, exist_ok=True)
        log_path = self.root / f"{instance}.log"
        env = process_env(self.network.environment(service_env(self.services[name])))
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                self.argv(name),
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        self.running[instance] = Running(instance, proc, log_path)
        return self.running[instance]

    def healthcheck(self, name: str) -> subprocess.CompletedProcess[str]:
        """The service's own healthcheck command, once, as run in its container (Toxiproxy's `toxiproxy-cli list`
        is a GET of /proxies: the stand-in answers that instead)."""
        check = self.services[name]["healthcheck"]
        if name == "toxiproxy":
            url = f"http://{self.network.addresses[name]}:8474/proxies"
            argv = ["curl", "-fsS", "-o", "/dev/null", url]
        else:
            argv = self.network.healthcheck(name, check["test"])
        timeout = _duration_s(check["timeout"])
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 124, "", f"timed out after {timeout} s")

    def wait_healthy(self, name: str) -> None:
        """Compose's rule: healthy at the first passing check; unhealthy after start_period + retries × interval."""
        check = self.services[name]["healthcheck"]
        budget_s = _duration_s(check.get("start_period", "0s")) + check["retries"] * _duration_s(check["interval"])
        deadline = time.monotonic() + budget_s
        last = None
        while time.monotonic() < deadline:
            if self.running[name].proc.poll() is not None:
                raise AssertionError(
                    f"{name} exited ({self.running[name].proc.returncode}):\n{self.running[name].log_tail()}"
                )
            last = self.healthcheck(name)
            if last.returncode == 0:
                return
            time.sleep(HEALTH_POLL_S)
        raise AssertionError(f"{name} never passed its healthcheck ({last}):\n{self.running[name].log_tail()}")

    def start_healthy(self, names: tuple[str, ...]) -> None:
        """Start `names` as Compose does: together, except that a service waits until what it depends on (with
        condition service_healthy) passes its healthcheck."""
        pending, healthy = list(names), set(self.running)
        while pending:
            ready = [n for n in pending if set(self.services[n].get("depends_on") or {}) <= healthy]
            assert ready, f"depends_on leaves {pending} waiting for services not started"
            for name in ready:
                conditions = {how["condition"] for how in (self.services[name].get("depends_on") or {}).values()}
                assert conditions <= {"service_healthy"}, name
                self.start(name)
            for name in ready:
                self.wait_healthy(name)
            healthy.update(ready)
            pending = [n for n in pending if n not in ready]

    def stop_all(self) -> None:
        """`docker compose down`: every container gets SIGTERM at once."""
        for running in self.running.values():
            if running.proc.poll() is None:
                running.proc.send_signal(signal.SIGTERM)
        for running in reversed(list(self.running.values())):
            running.stop()


@pytest.fixture(scope="module")
def emulation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulation]:
    profile = tmp_path_factory.mktemp("profile") / "short-china.toml"
    profile.write_text(SHORT_CHINA, encoding="utf-8")
    compose = load({"HARNESS_PROFILE": str(profile), "HARNESS_WORKERS": str(WORKERS)})
    block = f"127.{random.randint(64, 250)}.{random.randint(1, 250)}"  # not 127.0.0.1: other tests' servers
    emulation = Emulation(
        compose, Network.for_services(list(compose["services"]), block), tmp_path_factory.mktemp("compose")
    )
    try:
        emulation.start_healthy(STACK)
        yield emulation
    finally:
        emulation.stop_all()


def url(emulation: Emulation, service: str, port: int, scheme: str = "http") -> str:
    return f"{scheme}://{emulation.network.addresses[service]}:{port}"


def test_every_stack_piece_passes_its_own_healthcheck(emulation: Emulation) -> None:
    for name in STACK:
        done = emulation.healthcheck(name)
        assert done.returncode == 0, (name, done.stderr)


def test_the_edge_reaches_both_regions_in_their_container_and_routes_by_country(emulation: Emulation) -> None:
    edge = url(emulation, "edge", 54320)
    status = httpx.get(f"{edge}/_edge/status", timeout=5).json()
    assert {region: o["url"] for region, o in status["origins"].items()} == {
        "ap-southeast-1": url(emulation, "regions", 54321),
        "ap-northeast-1": url(emulation, "regions", 54322),
    }
    assert all(o["healthy"] for o in status["origins"].values())
    served = {}
    for country in ("CN", "SG"):
        response = httpx.get(f"{edge}/health", headers={"CloudFront-Viewer-Country": country}, timeout=5)
        assert response.status_code == 200
        served[country] = (response.headers["x-origin-region"], response.json()["role"])
    assert served == {"CN": ("ap-northeast-1", "replica"), "SG": ("ap-southeast-1", "primary")}


def test_meeting_tokens_send_clients_to_the_livekit_service(emulation: Emulation) -> None:
    """The regions hand out --livekit-url (the livekit service), not their own container's address."""
    edge = url(emulation, "edge", 54320)
    _, token, _ = create_user(edge)
    room = create_conversation(edge, token, [])
    response = httpx.post(f"{edge}/functions/v1/livekit-token", headers=user_headers(token), json={"room": room})
    assert response.status_code == 200, response.text
    livekit = url(emulation, "livekit", 7880, "ws")
    assert response.json()["url"] == livekit
    assert httpx.get(livekit.replace("ws://", "http://") + "/", timeout=5).text == "OK"


@pytest.mark.slow
def test_the_master_and_its_workers_give_a_verdict(emulation: Emulation) -> None:
    """`docker compose up --attach master --exit-code-from master`: the workers (deploy.replicas) join the master by
    its name alone; the master's exit code is the verdict; its /metrics answers while the run is live."""
    services = emulation.services
    replicas = int(services["worker"]["deploy"]["replicas"])
    assert replicas == WORKERS
    master = emulation.start("master")  # its depends_on (the stack) is healthy: the fixture waited
    workers = [emulation.start("worker", f"worker-{i + 1}") for i in range(replicas)]
    metrics_seen = False
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while master.proc.poll() is None and time.monotonic() < deadline:
        metrics_seen = metrics_seen or emulation.healthcheck("master").returncode == 0
        time.sleep(HEALTH_POLL_S)
    assert master.proc.poll() is not None, f"the master did not end within {RUN_TIMEOUT_S} s"
    assert master.proc.returncode in (0, 1), master.log_tail()  # a verdict, not an invalid run
    for worker in workers:
        assert worker.proc.wait(60) == 0, worker.log_tail()
    assert metrics_seen, "the master's healthcheck (its /metrics) never answered while the run was live"

    (run,) = [p for p in (emulation.root / "volumes" / "reports").iterdir() if p.is_dir()]  # the named volume
    result = load_result(run / "result.json")
    assert (result.run.workers_expected, result.run.workers_seen) == (WORKERS, WORKERS)
    assert set(result.run.groups) == {"china", "baseline"}
    # The China group's path: proxies the master made in the toxiproxy service, in front of the edge and LiveKit
    # services, which the workers reached at the advertised name.
    network = json.loads((run / "network.json").read_text())
    proxies = network["groups"]["china"]["proxies"].values()
    toxiproxy, edge, livekit = (emulation.network.addresses[n] for n in ("toxiproxy", "edge", "livekit"))
    assert {p["upstream"] for p in proxies} == {f"{edge}:54320", f"{livekit}:7880"}
    assert {p["listen"].rsplit(":", 1)[0] for p in proxies} == {toxiproxy}
    assert all(urlsplit(u).hostname == toxiproxy for u in network["groups"]["china"]["urls"].values())
    origins: dict[str, int] = {}
    for window in result.windows:
        for stat in window.stats:
            if stat.group == "china":
                for region, count in stat.origins.items():
                    origins[region] = origins.get(region, 0) + count
    assert origins and max(origins, key=origins.__getitem__) == "ap-northeast-1", origins  # the edge sent it to Japan
