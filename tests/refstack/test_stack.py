"""The reference stack as processes: ports chosen by the OS, every piece answers, nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_pieces_start_on_os_chosen_ports_and_stop_cleanly() -> None:
    config = StackConfig(ports=StackPorts.any(), pieces=("primary", "replica"))
    with ReferenceStack(config) as stack:
        pids = [p.proc.pid for p in stack.processes.values()]
        assert set(stack.endpoints.ports) == {"primary", "replica"}
        assert all(port > 0 for port in stack.endpoints.ports.values())
        primary = httpx.get(f"{stack.endpoints.primary_url}/health", timeout=5)
        replica = httpx.get(f"{stack.endpoints.replica_url}/health", timeout=5)
        assert primary.json()["role"] == "primary" and primary.headers["x-origin-region"] == "ap-southeast-1"
        assert replica.json()["role"] == "replica" and replica.headers["x-origin-region"] == "ap-northeast-1"
    assert not any(_alive(pid) for pid in pids)


def test_target_up_stops_every_child_on_sigint(tmp_path: object) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "target", "up", "--only", "primary", "--only", "replica",
         "--primary-port", "0", "--replica-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "Ctrl-C stops it." in line or not line:
            break
    urls = [word for line in lines for word in line.split() if word.startswith("http://")]
    assert len(urls) == 2, lines
    assert httpx.get(f"{urls[0]}/health", timeout=5).status_code == 200
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 0
    for url in urls:
        try:
            httpx.get(f"{url}/health", timeout=1)
            raise AssertionError(f"{url} still answers after Ctrl-C")
        except httpx.TransportError:
            pass
