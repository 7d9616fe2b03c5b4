"""Start and stop a Locust master and its local workers as child processes.

    LocustCluster.start()   master (--headless --expect-workers N, bound to loopback) then N workers
    LocustCluster.stop()    SIGTERM the master (it collects the workers' final reports and writes result.json),
                            wait; then the workers; anything still alive after its grace period is killed

Each child runs in its own session, so a terminal's Ctrl-C reaches only the orchestrator, which then stops the
children in order; each also gets SIGTERM from the kernel if the orchestrator dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.procs.child import Child

MASTER_STOP_GRACE_S = 20.0
"""How long the master may take after SIGTERM (final worker reports, result.json) before it is killed."""
WORKER_STOP_GRACE_S = 5.0
"""How long workers may take to exit after the master has gone, before SIGTERM and then SIGKILL."""
EXPECT_WORKERS_MAX_WAIT_S = 60
"""The master gives up (and the run is invalid) when the workers have not all connected by then."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on `host` (Locust's master cannot bind port 0 and report it back)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class WorkerGroup:
    """Workers that play one user group: their own environment (profile, URLs, viewer country) and, for a group
    in a network namespace, an argv prefix (`ip netns exec harness-… `)."""

    name: str
    workers: int
    env: Mapping[str, str] = field(default_factory=dict)
    wrap: tuple[str, ...] = ()


@dataclass
class ClusterConfig:
    locustfile: Path
    workers: int
    """Total workers; with `groups`, the sum of the groups' workers."""
    host: str
    """The target base URL Locust users get as `self.host`; "" in group runs (each group sets HARNESS_HOST)."""
    out_dir: Path
    """Logs (`locust-master.log`, `locust-worker-<n>.log`) and Locust's CSVs go here."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment for every child (target settings, HARNESS_*); secrets stay out of argv."""
    bind_host: str = "127.0.0.1"
    """Where the master listens for workers (a namespace's host-side address when a group runs inside one)."""
    groups: tuple[WorkerGroup, ...] = ()
    """Worker groups; empty = `workers` identical workers."""
    master_port: int | None = None
    """The master's port for workers; None: a free one (local runs)."""
    remote_workers: bool = False
    """Start no workers here: `workers` workers connect from elsewhere (`harness worker`, docs/running.md)."""
    workers_wait_s: int = EXPECT_WORKERS_MAX_WAIT_S
    """The master gives up (and the run is invalid) when the workers have not all connected by then."""


def locust_argv(locustfile: Path, host: str = "") -> list[str]:
    """`python -m locust -f LOCUSTFILE [--host HOST]`, the start of every master's and worker's command line."""
    return [sys.executable, "-m", "locust", "-f", str(locustfile), *(["--host", host] if host else [])]


def worker_argv(locustfile: Path, host: str, master_host: str, master_port: int) -> list[str]:
    return [*locust_argv(locustfile, host), "--worker", "--master-host", master_host, "--master-port", str(master_port)]


class LocustCluster:
    """A master and `workers` local workers; `stop()` is safe to call any number of times, from any exit path."""

    def __init__(self, config: ClusterConfig) -> None:
        if config.workers < 1:
            raise ValueError(f"workers must be >= 1, got {config.workers}")
        if config.groups and sum(g.workers for g in config.groups) != config.workers:
            raise ValueError(f"workers ({config.workers}) must be the sum of the groups' workers")
        self.config = config
        self.master: Child | None = None
        self.workers: list[Child] = []
        self.master_port = 0

    def _base_argv(self) -> list[str]:
        return locust_argv(self.config.locustfile, self.config.host)

    def start(self) -> LocustCluster:
        cfg = self.config
        cfg.out_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **cfg.env, "PYTHONUNBUFFERED": "1"}
        self.master_port = cfg.master_port if cfg.master_port is not None else free_port(cfg.bind_host)
        master_argv = [
            *self._base_argv(),
            "--master",
            "--headless",
            "--expect-workers", str(cfg.workers),
            "--expect-workers-max-wait", str(cfg.workers_wait_s),
            "--master-bind-host", cfg.bind_host,
            "--master-bind-port", str(self.master_port),
            "--csv", str(cfg.out_dir / "locust"),
            "--only-summary",
        ]  # fmt: skip
        try:
            self.master = Child("master", master_argv, cfg.out_dir / "locust-master.log", env=env)
            groups = () if cfg.remote_workers else cfg.groups or (WorkerGroup("", cfg.workers),)
            for group in groups:
                for i in range(1, group.workers + 1):
                    name = f"{group.name}-{i}" if group.name else f"worker-{i}"
                    argv = [*group.wrap, *worker_argv(cfg.locustfile, cfg.host, cfg.bind_host, self.master_port)]
                    worker_env = {**env, **group.env, "HARNESS_WORKER_NAME": name}
                    log_path = cfg.out_dir / f"locust-worker-{name.removeprefix('worker-')}.log"
                    self.workers.append(Child(name, argv, log_path, env=worker_env))
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def children(self) -> list[Child]:
        return ([self.master] if self.master is not None else []) + self.workers

    def pids(self) -> list[int]:
        return [c.pid for c in self.children]

    def master_running(self) -> bool:
        return self.master is not None and self.master.running()

    def stop(self, master_grace_s: float = MASTER_STOP_GRACE_S, worker_grace_s: float = WORKER_STOP_GRACE_S) -> None:
        """Graceful, then forceful: every child is gone when this returns, also when a second Ctrl-C (a
        KeyboardInterrupt) cuts the graceful part short: the rest are killed at once."""
        try:
            self._stop(master_grace_s, worker_grace_s)
        except BaseException:
            for child in self.children:
                child.kill_group()
                child.close()
            raise

    def _stop(self, master_grace_s: float, worker_grace_s: float) -> None:
        if self.master is not None:
            self.master.stop(master_grace_s)
        deadline = time.monotonic() + worker_grace_s
        for worker in self.workers:
            worker.wait(deadline - time.monotonic())
        for worker in self.workers:
            worker.signal(signal.SIGTERM)
        deadline = time.monotonic() + worker_grace_s
        for child in self.children:
            if not child.wait(deadline - time.monotonic()):
                child.kill_group()
        for child in self.children:
            child.close()
