"""Helpers for the orchestrator tests: short profiles, and `harness` runs as subprocesses (Locust must never be
imported into the pytest process: gevent would patch it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "locustfiles"
REST_READ = FIXTURES / "rest_read.py"


def write_profile(path: Path, *, duration_s: float = 3, users: int = 4, extra: str = "") -> Path:
    """A short profile with 1 s windows; `extra` appends TOML (e.g. gates)."""
    path.write_text(
        f"window_s = 1\n[load]\nusers = {users}\nspawn_rate = {users}\nduration_s = {duration_s}\n"
        f"[scenarios]\nWebUser = 1\n{extra}",
        encoding="utf-8",
    )
    return path


def harness_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness", *args]


def run_harness(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        harness_argv(*args),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, **(env or {})},
        check=False,
    )


def free_port_pair() -> int:
    """A free loopback port whose next port is free too (a distributed master's Locust port and its bootstrap)."""
    import socket

    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise AssertionError("no two free ports in a row on 127.0.0.1")
