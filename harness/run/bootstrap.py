"""What a remote worker needs, handed out by the master's side of a distributed run (`harness run --master`).

    POST http://MASTER:BOOTSTRAP_PORT/v1/worker  {"name": "<worker name>"}   → one worker's configuration (JSON)

A worker (`harness worker`, harness/run/worker.py) asks once before it starts Locust: it is given a slot, and with
it the slot's user group, the run's environment (target URLs and keys, HARNESS_* settings), the files the
environment names (the group's profile, the test users' credentials) and the locustfile's folder. So a worker
needs only the master's address: `docker compose up --scale worker=4` and a Kubernetes worker Job need nothing
else. Slots follow the group split (as local runs start one worker set per group); the same name asking again
gets the same slot (a restarted pod), and once every slot is taken the answer is 409 with the reason.

The answer holds the target's keys and the test users' passwords: the port belongs inside the cluster network
(docs/running.md). With HARNESS_CLUSTER_TOKEN set on both sides, a worker must present it as a bearer token.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.loadgen import env as hs
from harness.loadgen.cluster import ClusterConfig, WorkerGroup
from harness.scenarios import settings as scenario_env

PATH = "/v1/worker"
TOKEN_VAR = "HARNESS_CLUSTER_TOKEN"
FILE_VARS = (hs.PROFILE, scenario_env.CREDENTIALS)
"""Variables naming a file on the master: the file travels, and the worker points the variable at its copy."""
LOCAL_VARS = (hs.OUT_DIR, "HARNESS_STATE_DIR")
"""Master-side folders a worker replaces with its own."""
MAX_LOCUSTFILE_FOLDER_BYTES = 2 * 1024 * 1024
MAX_BODY_BYTES = 4096


def bootstrap_port(master_port: int) -> int:
    """The bootstrap answers next to Locust's own port (5557 → 5558)."""
    return master_port + 1


@dataclass
class Slots:
    """Who has which slot: slot i plays `groups[i]` (a group per worker, in the order of the split)."""

    groups: list[WorkerGroup]
    taken: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self, name: str) -> int | None:
        with self.lock:
            if name in self.taken:
                return self.taken[name]
            if len(self.taken) >= len(self.groups):
                return None
            self.taken[name] = len(self.taken)
            return self.taken[name]


def slot_groups(config: ClusterConfig) -> list[WorkerGroup]:
    """One entry per expected worker: its group (the unnamed default group when the run has one)."""
    groups = config.groups or (WorkerGroup("", config.workers),)
    return [group for group in groups for _ in range(group.workers)]


def locustfile_folder(locustfile: Path) -> dict[str, str]:
    """The locustfile and the Python files beside it (a locustfile may import its siblings, as mixed.py does)."""
    files = {path.name: path.read_text(encoding="utf-8") for path in sorted(locustfile.parent.glob("*.py"))}
    if sum(len(text) for text in files.values()) > MAX_LOCUSTFILE_FOLDER_BYTES:
        raise ConfigError(
            f"--locustfile: the folder {locustfile.parent} holds more than 2 MiB of Python; a distributed run ships "
            "the locustfile's folder to every worker: keep the locustfile in a folder of its own"
        )
    return files


class WorkerConfigs:
    """Every slot's answer, built once from the cluster's configuration."""

    def __init__(self, config: ClusterConfig, master_port: int, extra_env: dict[str, str]) -> None:
        self.config = config
        self.master_port = master_port
        self.slots = Slots(slot_groups(config))
        self.base_env = {**extra_env, **config.env}
        self.locustfiles = locustfile_folder(config.locustfile)

    def answer(self, name: str) -> dict[str, Any] | None:
        slot = self.slots.claim(name)
        if slot is None:
            return None
        group = self.slots.groups[slot]
        env = {k: v for k, v in {**self.base_env, **group.env}.items() if k not in LOCAL_VARS}
        files = {}
        for var in FILE_VARS:
            if env.get(var):
                path = Path(env[var])
                files[var] = {"name": path.name, "text": path.read_text(encoding="utf-8")}
        return {
            "slot": slot,
            "group": group.name,
            "worker_name": f"{group.name}-{slot + 1}" if group.name else f"worker-{slot + 1}",
            "master_port": self.master_port,
            "host": self.config.host,
            "locustfile": self.config.locustfile.name,
            "locustfiles": self.locustfiles,
            "env": env,
            "files": files,
        }


def harness_env() -> dict[str, str]:
    """The HARNESS_* settings of the master's own environment (a local worker would inherit them)."""
    return {k: v for k, v in os.environ.items() if k.startswith("HARNESS_") and k not in (TOKEN_VAR, *LOCAL_VARS)}


class BootstrapServer:
    """The HTTP side of WorkerConfigs, in a thread of the orchestrator; stopped with the run."""

    def __init__(self, configs: WorkerConfigs, bind: str, port: int) -> None:
        self.configs = configs
        token = os.environ.get(TOKEN_VAR, "")
        handler = _handler(configs, token)
        try:
            self.server = ThreadingHTTPServer((bind, port), handler)
        except OSError as exc:
            raise ConfigError(
                f"the worker bootstrap cannot listen on {bind}:{port} ({exc.strerror or exc}); it uses --master-port "
                "+ 1: pick a --master-port whose next port is free too"
            ) from None
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="worker-bootstrap", daemon=True)
        self.thread.start()

    @property
    def joined(self) -> int:
        return len(self.configs.slots.taken)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _handler(configs: WorkerConfigs, token: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server calls it by this name
            if self.path != PATH:
                return self._reply(404, {"error": f"unknown path; workers POST to {PATH}"})
            if token and not hmac.compare_digest(self.headers.get("Authorization", ""), f"Bearer {token}"):
                return self._reply(401, {"error": f"missing or wrong {TOKEN_VAR}"})
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY_BYTES:
                return self._reply(400, {"error": 'send {"name": "<worker name>"}'})
            try:
                name = json.loads(self.rfile.read(length))["name"]
            except (ValueError, KeyError, TypeError):
                return self._reply(400, {"error": 'send {"name": "<worker name>"}'})
            if not isinstance(name, str) or not 0 < len(name) <= 200:
                return self._reply(400, {"error": "name: a string of 1 to 200 characters"})
            answer = configs.answer(name)
            if answer is None:
                taken = len(configs.slots.groups)
                return self._reply(409, {"error": f"the run expects {taken} workers and all {taken} have joined"})
            return self._reply(200, answer)

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the answers hold secrets
            return

    return Handler
