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
import yaml

from harness.cli import build_parser
from harness.model import hosts, keys
from harness.model.target_config import load_target
from tests.deploy.compose_emulation import (
    COMPOSE_FILE,
    ROOT,
    is_harness,
    load,
    mount_source,
    mounts,
    read_env_file,
    service_env,
)

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


def _flag(command: list[str], name: str) -> str:
    return str(command[command.index(name) + 1])


def test_the_master_runs_distributed_with_metrics_and_the_real_toxiproxy(services: dict[str, Any]) -> None:
    command = services["master"]["command"]
    assert command[:3] == ["run", "china", "--master"]
    assert _flag(command, "--expect-workers") == str(services["worker"]["deploy"]["replicas"])
    # Every listener in a container binds its container's interfaces, said in the file rather than left to defaults.
    assert _flag(command, "--master-bind") == _flag(command, "--metrics-bind") == "0.0.0.0"
    assert _flag(command, "--toxiproxy-listen-host") == "0.0.0.0"
    assert _flag(command, "--metrics-port") == "9646"
    assert _flag(command, "--toxiproxy-advertise-host") == "toxiproxy"
    env = service_env(services["master"])
    assert urlsplit(env["TOXIPROXY_URL"]).hostname == "toxiproxy"
    assert env["HARNESS_REFERENCE_STACK"] == "1"  # the edge stand-in routes by the claimed viewer country
    assert services["worker"]["command"][:3] == ["worker", "--master-host", "master"]
    assert mounts(services["master"])[_flag(command, "--reports-dir")] == "reports"  # a named volume: uid 10001
    # can write it (a host folder: maybe not); it outlives the container


def test_the_master_reads_the_target_from_an_env_file(services: dict[str, Any]) -> None:
    """Without --env-file (or --host) a run starts its own embedded reference stack and ignores the environment's
    SUPABASE_URL: the master would then load a stack inside its own container, not the stack services."""
    command = services["master"]["command"]
    target = read_env_file(mount_source(services["master"], _flag(command, "--env-file")))
    assert urlsplit(target["SUPABASE_URL"]).hostname == "edge"
    assert load_target(None, target).supabase_url == "http://edge:54320"  # as the harness reads it
    for name in ("livekit", "regions"):  # the LiveKit pair: the stand-in's and the tokens' signing pair
        flag = _flag(services[name]["command"], "--env-file")
        assert mount_source(services[name], flag) == mount_source(services["master"], _flag(command, "--env-file"))


def test_every_host_the_harness_reaches_is_allowed(services: dict[str, Any]) -> None:
    command = services["master"]["command"]
    target = read_env_file(mount_source(services["master"], _flag(command, "--env-file")))
    allowed = [h.strip() for h in target["HARNESS_ALLOW_HOSTS"].split(",")]
    reached = {urlsplit(target[var]).hostname for var in ("SUPABASE_URL", "SUPABASE_URL_JAPAN", "LIVEKIT_URL")}
    reached.add(_flag(command, "--toxiproxy-advertise-host"))  # the China group's URLs name it
    for name in ("regions", "edge"):  # the URLs the stack hands out or proxies to
        reached |= {urlsplit(a).hostname for a in services[name]["command"] if "://" in a}
    assert None not in reached
    assert sorted(h for h in reached if h and not hosts.allowed(h, allowed)) == []
    assert set(allowed) <= set(services), "HARNESS_ALLOW_HOSTS lists only this file's services"


def test_the_target_file_holds_the_reference_stacks_demo_keys(services: dict[str, Any]) -> None:
    command = services["master"]["command"]
    target = read_env_file(mount_source(services["master"], _flag(command, "--env-file")))
    assert target["SUPABASE_ANON_KEY"] == target["SUPABASE_ANON_KEY_JAPAN"] == keys.ANON_KEY
    assert target["SUPABASE_SERVICE_ROLE_KEY"] == keys.SERVICE_ROLE_KEY
    assert (target["LIVEKIT_API_KEY"], target["LIVEKIT_API_SECRET"]) == (keys.LIVEKIT_API_KEY, keys.LIVEKIT_API_SECRET)
    assert service_env(services["worker"]) == {} and "volumes" not in services["worker"]  # all from the master


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
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert published
    assert [p for p in published if not str(p).startswith("127.0.0.1:")] == []


def test_prometheus_and_grafana_mount_the_monitoring_files_where_they_point(services: dict[str, Any]) -> None:
    mounts = {name: dict(v.split(":")[:2] for v in services[name]["volumes"]) for name in ("prometheus", "grafana")}
    for name, pairs in mounts.items():
        for source in pairs:
            assert (ROOT / source).is_dir(), f"{name} mounts {source}, which does not exist"
    prometheus_dir = ROOT / next(s for s, t in mounts["prometheus"].items() if t == "/etc/prometheus")
    config = yaml.safe_load((prometheus_dir / "prometheus.yml").read_text())
    assert all((prometheus_dir / rules).is_file() for rules in config["rule_files"])  # relative to the mount
    (scrape,) = config["scrape_configs"]
    master = services["master"]["command"]
    assert scrape["static_configs"][0]["targets"] == [f"master:{master[master.index('--metrics-port') + 1]}"]
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/harness.yml").read_text())
    dashboards = provider["providers"][0]["options"]["path"]
    assert mounts["grafana"]["./deploy/grafana/dashboards"] == dashboards
    assert list((ROOT / "deploy/grafana/dashboards").glob("*.json"))
    datasource = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert urlsplit(datasource["datasources"][0]["url"]).hostname == "prometheus"
