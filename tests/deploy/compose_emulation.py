"""docker-compose.yml read as Compose reads it, and its services' own commands turned into local processes.

No container engine runs here, so each service becomes what its container would run, on loopback:

    service name (edge, regions, master, ...) ──► its own address 127.A.B.N (one per service, N in file order)
    0.0.0.0 given to a listener               ──► the address of the container that listens there:
                                                 --bind/-host/... → the service itself; --toxiproxy-listen-host →
                                                 the toxiproxy service (its proxies listen in that container)
    127.0.0.1 in a healthcheck                ──► the service's own address (inside a container it is itself)
    a service name as a URL host or host flag ──► that service's address
    a volume's mount point (/app/reports)     ──► a local folder for that volume
    entrypoint `harness`                      ──► python -m harness (this checkout)

Distinct addresses rather than one address with rewritten ports: every port stays as the file writes it, and two
services using the same port (as containers may) cannot collide. Only these rewrites are made; everything else in
a command, an environment value or an env_file reaches the process unchanged.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
IMAGE_PREFIX = "ghcr.io/harness-project/harness:"
WILDCARD = "0.0.0.0"
LISTEN_FLAGS_OF_OTHERS = {"--toxiproxy-listen-host": "toxiproxy"}
"""Flags whose 0.0.0.0 is another container's: the master tells Toxiproxy where to open the proxies' listeners."""
HOST_FLAGS = ("--master-host", "--toxiproxy-advertise-host")
"""Flags whose value is a service name."""
HOST_LIST_VARS = ("HARNESS_ALLOW_HOSTS",)
"""Environment variables holding comma-separated host names."""
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate(value: Any, variables: Mapping[str, str]) -> Any:
    """Compose's `${VAR}` and `${VAR:-default}` in every string of a loaded document."""
    if isinstance(value, str):
        return _INTERPOLATION.sub(lambda m: variables.get(m[1]) or (m[2] or ""), value)
    if isinstance(value, list):
        return [interpolate(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, variables) for k, v in value.items()}
    return value


def load(variables: Mapping[str, str] | None = None) -> dict[str, Any]:
    """docker-compose.yml with its YAML anchors merged and variables interpolated (defaults unless given)."""
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    return dict(interpolate(document, variables or {}))


def read_env_file(path: Path) -> dict[str, str]:
    """Compose's env_file: NAME=VALUE lines, `#` comment lines."""
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            out[name.strip()] = value
    return out


def is_harness(service: Mapping[str, Any]) -> bool:
    return str(service.get("image", "")).startswith(IMAGE_PREFIX)


@dataclass(frozen=True)
class Network:
    """Each service's loopback address, standing in for its container's address on the compose network."""

    addresses: dict[str, str]

    @classmethod
    def for_services(cls, names: list[str], block: str) -> Network:
        """`block` is "127.A.B": service i gets 127.A.B.(i + 1)."""
        return cls({name: f"{block}.{i + 1}" for i, name in enumerate(names)})

    def resolve_text(self, text: str) -> str:
        """Service names used as URL hosts (`http://edge:54320`) replaced by their addresses."""
        for name, address in self.addresses.items():
            text = re.sub(rf"(?<=://){re.escape(name)}(?=[:/]|$)", address, text)
        return text

    def command(self, service: str, argv: list[str]) -> list[str]:
        out: list[str] = []
        for i, arg in enumerate(argv):
            flag = argv[i - 1] if i else ""
            if arg == WILDCARD:
                arg = self.addresses[LISTEN_FLAGS_OF_OTHERS.get(flag, service)]
            elif arg.startswith(f"-host={WILDCARD}"):  # Toxiproxy's own flag form
                arg = f"-host={self.addresses[service]}"
            elif flag in HOST_FLAGS:
                arg = self.addresses.get(arg, arg)
            out.append(self.resolve_text(arg))
        return out

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        out = {}
        for name, value in env.items():
            if name in HOST_LIST_VARS:
                value = ",".join(self.addresses.get(h.strip(), h.strip()) for h in value.split(","))
            out[name] = self.resolve_text(value)
        return out

    def healthcheck(self, service: str, test: list[str]) -> list[str]:
        """A `[CMD, ...]` healthcheck as run inside the service's container."""
        assert test[0] == "CMD", f"{service}: healthcheck {test} is not in exec form"
        argv = [a.replace("127.0.0.1", self.addresses[service]) for a in test[1:]]
        if argv[0] == "python":
            argv[0] = sys.executable
        return argv


def mounts(service: Mapping[str, Any]) -> dict[str, str]:
    """Container path → source of each volume: `./path` (a bind mount, relative to the file) or a volume's name."""
    out = {}
    for volume in service.get("volumes") or []:
        source, target = str(volume).split(":")[:2]
        out[target] = source
    return out


def mount_source(service: Mapping[str, Any], container_path: str) -> Path:
    """The checkout's file a bind mount shows at `container_path`."""
    source = mounts(service)[container_path]
    assert source.startswith("./"), f"{container_path} is not bind-mounted from the checkout"
    return ROOT / source


def mounted(argv: list[str], service: Mapping[str, Any], network: Network, local: Path) -> list[str]:
    """Paths under a mount point moved to a local folder: a named volume's to `local/<name>`; a bind-mounted env
    file to a copy with its service names resolved (what the container's DNS would do for the process reading it)."""
    out = list(argv)
    for target, source in mounts(service).items():
        if source.startswith(("./", "/")):
            path = ROOT / source
            if not path.is_file():
                continue  # a folder no harness command reads (Prometheus, Grafana)
            copy = local / "binds" / path.name
            copy.parent.mkdir(parents=True, exist_ok=True)
            env = network.environment(read_env_file(path))
            copy.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
            replacement = str(copy)
        else:
            replacement = str(local / source)
        out = [replacement + a[len(target) :] if a == target or a.startswith(target + "/") else a for a in out]
    return out


def service_env(service: Mapping[str, Any]) -> dict[str, str]:
    """The environment Compose gives a container: its env_file(s), then `environment` (which wins)."""
    env: dict[str, str] = {}
    files = service.get("env_file") or []
    for name in [files] if isinstance(files, str) else files:
        env.update(read_env_file(ROOT / name))
    declared = service.get("environment") or {}
    if isinstance(declared, list):
        declared = dict(item.split("=", 1) for item in declared)
    env.update({k: str(v) for k, v in declared.items()})
    return env


def process_env(container_env: Mapping[str, str]) -> dict[str, str]:
    """A process's environment as in a fresh container: this machine's basics (PATH, HOME, TMPDIR), none of the
    target or harness settings of the calling shell, this checkout on PYTHONPATH, then the container's own."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "SUPABASE_", "LIVEKIT_", "TOXIPROXY"))}
    keep["PYTHONPATH"] = str(ROOT)
    keep["PYTHONUNBUFFERED"] = "1"
    return {**keep, **container_env}


def harness_argv(command: list[str]) -> list[str]:
    """The image's entrypoint (`harness`) and the service's command."""
    return [sys.executable, "-m", "harness", *command]
