"""Crash a region the way a drill wants it: SIGKILL its server process and its PostgreSQL, then wait until both
ports are closed, so a restart can bind them again.

    ReferenceStack.kill("primary")
        ├─ read <data_dir>/<region>/postgres/postmaster.pid  (pid, port; before anything dies)
        ├─ SIGKILL the postmaster's process group            (postmaster and every backend: a crash, no checkpoint)
        ├─ SIGKILL the region's process group                (Child.kill_group)
        └─ wait (bounded) until both pids are gone and both ports refuse connections

PostgreSQL goes first: it would otherwise get SIGTERM from the kernel when the region dies (PR_SET_PDEATHSIG, see
harness/procs/child.py) and shut down cleanly, which is not a crash. As root the server runs as `harness-pg`;
root may signal it, and as a normal user it is our own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import TargetUnreachable

KILL_WAIT_S = 15.0
"""Longest wait for killed processes to go and their ports to close (normally a few milliseconds)."""
POLL_S = 0.02


@dataclass(frozen=True)
class Postmaster:
    """What a running cluster's postmaster.pid says: the postmaster's pid and its TCP port."""

    pid: int
    port: int


def read_postmaster(cluster_dir: Path) -> Postmaster | None:
    """The live postmaster of the cluster in `cluster_dir`, or None (not running, or a stale pid file)."""
    try:
        lines = (cluster_dir / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    if not is_alive(pid) or not _is_postgres(pid):
        return None
    return Postmaster(pid, port)


def _is_postgres(pid: int) -> bool:
    try:
        return b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def is_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a zombie holds no port and no shared memory)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another account
    try:
        # /proc/<pid>/stat: "pid (comm) STATE ..."; comm may hold spaces, so split after its closing parenthesis.
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def kill_postmaster(postmaster: Postmaster) -> None:
    """SIGKILL the postmaster and its backends. The postmaster leads its own process group (the cluster starts it
    in a new session); if it somehow does not, only the postmaster is signalled (its backends then exit on their
    own when they notice it is gone)."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(postmaster.pid) == postmaster.pid:
            os.killpg(postmaster.pid, signal.SIGKILL)
        else:
            os.kill(postmaster.pid, signal.SIGKILL)


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect((host, port))
        except OSError:
            return False
    return True


def wait_gone(what: str, pids: list[int], host: str, ports: list[int], timeout_s: float = KILL_WAIT_S) -> None:
    """Wait until every pid is gone and every port refuses connections; TargetUnreachable naming what is left."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = [pid for pid in pids if is_alive(pid)]
        listening = [port for port in ports if port_open(host, port)]
        if not alive and not listening:
            return
        if time.monotonic() >= deadline:
            raise TargetUnreachable(
                f"{what}: still there {timeout_s:.0f} s after SIGKILL: "
                f"processes {alive or 'none'}, listening ports {listening or 'none'}"
            )
        time.sleep(POLL_S)
