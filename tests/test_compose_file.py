"""docker-compose.yml, checked without a container engine: Compose itself accepts it (Debian's docker-compose v1,
`config -q`), every harness command in it is one the CLI accepts, every host it sends traffic to is allowed, the
demo keys are the stack's own, health gates the start order, and the mounted monitoring files exist.
The wiring (addresses, env, arguments) is proven by running the services' commands: tests/test_compose_wiring.py."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest

from harness.cli import build_parser
from harness.model import hosts, keys
from tests.compose_emulation import COMPOSE_FILE, ROOT, is_harness, load, service_env

REAL_TOXIPROXY = "ghcr.io/shopify/toxiproxy"
NO_HEALTHCHECK = {"worker": "listens on nothing; the master counts its workers (fewer than expected: exit 2)"}
STARTED_NOT_HEALTHY = {("worker", "master")}
"""Dependencies a service waits for only to have started: a worker retries the master until --connect-timeout, and
the master's health (/metrics) only answers once its run is under way."""


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose (Debian's v1) is not installed: scripts/install"
)
def test_docker_compose_accepts_the_file() -> None:
    done = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose (Debian's v1) is not installed")
def test_docker_compose_refuses_a_broken_file(tmp_path: Any) -> None:
    """The check above can fail: the same file with a service depending on one that does not exist is refused."""
    broken = COMPOSE_FILE.read_text().replace(
        "condition: service_started", "condition: service_started\n      nope: {condition: service_healthy}"
    )
    (tmp_path / "docker-compose.yml").write_text(broken)
    done = subprocess.run(
        [
            "docker-compose",
            "-f",
            str(tmp_path / "docker-compose.yml"),
            "--project-directory",
            str(ROOT),
            "config",
            "-q",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and "nope" in done.stderr


def test_the_stack_pieces_master_and_workers_run_from_the_image(services: dict[str, Any]) -> None:
    harness = sorted(name for name, s in services.items() if is_harness(s))
    assert harness == ["edge", "livekit", "master", "regions", "worker"]
    for name in harness:
        assert services[name]["build"] == "." and services[name]["init"] is True, name
        assert "entrypoint" not in services[name], f"{name}: the image's entrypoint is `harness`"
    assert services["toxiproxy"]["image"].startswith(REAL_TOXIPROXY + ":")
    assert services["toxiproxy"]["image"].split(":")[1][0].isdigit()  # a pinned release, not latest


@pytest.mark.parametrize("name", ["livekit", "regions", "edge", "master", "worker"])
def test_each_harness_command_is_one_the_cli_accepts(services: dict[str, Any], name: str) -> None:
    parser = build_parser()
    try:
        args = parser.parse_args(services[name]["command"])
    except SystemExit as exc:  # argparse's way of refusing
        raise AssertionError(f"{name}: harness refuses {services[name]['command']}") from exc
    assert callable(args.func)


def test_the_master_runs_distributed_with_metrics_and_the_real_toxiproxy(services: dict[str, Any]) -> None:
    command = services["master"]["command"]
    assert command[:2] == ["run", "china"]
    assert "--master" in command
    assert command[command.index("--expect-workers") + 1] == str(services["worker"]["deploy"]["replicas"])
    assert command[command.index("--metrics-port") + 1] == "9646"
    assert command[command.index("--toxiproxy-advertise-host") + 1] == "toxiproxy"
    assert command[command.index("--toxiproxy-listen-host") + 1] == "0.0.0.0"
    env = service_env(services["master"])
    assert urlsplit(env["TOXIPROXY_URL"]).hostname == "toxiproxy"
    assert services["worker"]["command"] == ["worker", "--master-host", "master"]
    assert any(v.endswith(":/app/reports") for v in services["master"]["volumes"])  # reports outlive the container


def test_every_host_the_harness_reaches_is_allowed(services: dict[str, Any]) -> None:
    env = service_env(services["master"])
    allowed = [h.strip() for h in env["HARNESS_ALLOW_HOSTS"].split(",")]
    reached = {urlsplit(env[var]).hostname for var in ("SUPABASE_URL", "SUPABASE_URL_JAPAN", "LIVEKIT_URL")}
    command = services["master"]["command"]
    reached.add(command[command.index("--toxiproxy-advertise-host") + 1])  # the China group's URLs name it
    for name in ("regions", "edge"):
        reached |= {urlsplit(a).hostname for a in services[name]["command"] if "://" in a}
    assert None not in reached
    assert sorted(h for h in reached if h and not hosts.allowed(h, allowed)) == []
    assert set(allowed) <= set(services), "HARNESS_ALLOW_HOSTS lists only this file's services"


def test_the_env_file_holds_the_reference_stacks_demo_keys(services: dict[str, Any]) -> None:
    env = service_env(services["master"])
    assert env["SUPABASE_ANON_KEY"] == env["SUPABASE_ANON_KEY_JAPAN"] == keys.ANON_KEY
    assert env["SUPABASE_SERVICE_ROLE_KEY"] == keys.SERVICE_ROLE_KEY
    assert (env["LIVEKIT_API_KEY"], env["LIVEKIT_API_SECRET"]) == (keys.LIVEKIT_API_KEY, keys.LIVEKIT_API_SECRET)
    assert env["HARNESS_REFERENCE_STACK"] == "1"  # the edge stand-in routes by the claimed viewer country
    for name, service in services.items():
        if name != "master":
            assert not any("KEY" in k or "SECRET" in k for k in service_env(service)), name


def test_health_orders_the_start(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name in NO_HEALTHCHECK:
            assert "healthcheck" not in service
            continue
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD", f"{name}: exec form (the Toxiproxy image has no shell)"
        for dependency, how in (service.get("depends_on") or {}).items():
            expected = "service_started" if (name, dependency) in STARTED_NOT_HEALTHY else "service_healthy"
            assert how == {"condition": expected}, f"{name} → {dependency}"
    assert set(services["master"]["depends_on"]) == {"edge", "regions", "livekit", "toxiproxy"}
    assert set(services["edge"]["depends_on"]) == {"regions"}


def test_published_ports_are_on_the_hosts_loopback_only(services: dict[str, Any]) -> None:
    published = [(name, p) for name, s in services.items() for p in s.get("ports", [])]
    assert published
    assert [p for _, p in published if not str(p).startswith("127.0.0.1:")] == []


def test_the_monitoring_files_it_mounts_exist(services: dict[str, Any]) -> None:
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
