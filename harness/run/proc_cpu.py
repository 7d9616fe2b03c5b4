"""CPU per process while a run is live, so a report can tell a generator limit from a target limit.

    orchestrator ── every interval_s ──► psutil: this process's descendants, each named by its role
                                          (edge, primary, primary-postgres, replica, …, locust-worker, …)
                                          + the whole machine (busy % of every core, `machine`)
                 ── at the end ─────────► Result.process_cpu: CpuSample(t_s, name, cpu_pct) per role per tick

CPU % is of one core (100 = one core busy), summed over the role's processes, from the change in their CPU times
between two ticks, so a process that starts or ends between ticks counts for the part it was alive. On a real
target only the generator's processes are local: the samples then say how busy the load generator was.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict

import psutil

from harness.model.result import CpuSample

MACHINE = "machine"
"""The whole machine's busy CPU, % of one core (200 = both cores of a 2-core machine busy)."""


def role_of(cmdline: list[str], parent_role: str = "") -> str:
    """A short name for what a descendant process does, from its command line (and its parent's role: a
    PostgreSQL backend, titled `postgres: <user> <db> <client> <state>`, is its postmaster's role plus the user)."""
    text = " ".join(cmdline)
    if text.startswith("postgres: ") and parent_role.endswith("postgres"):
        words = text.split()
        user = words[1] if len(words) > 2 and words[1] not in ("background", "walwriter", "checkpointer") else ""
        return f"{parent_role} ({user})" if user and not user.endswith(":") else parent_role
    if "postgres" in (os.path.basename(cmdline[0]) if cmdline else ""):
        for region, piece in (("ap-southeast-1", "primary"), ("ap-northeast-1", "replica")):
            if f"/{region}/" in text:
                return f"{piece}-postgres"
        return "postgres"
    if "locust" in text:
        return "locust-worker" if "--worker" in text else "locust-master"
    if "--name" in cmdline:
        index = cmdline.index("--name")
        if index + 1 < len(cmdline):
            return cmdline[index + 1]
    return "other"


class ProcessCpu:
    """A daemon thread sampling the CPU of this process's descendants by role; `stop()` returns the samples."""

    def __init__(self, interval_s: float = 5.0, root_pid: int | None = None) -> None:
        self.interval_s = interval_s
        self._root = psutil.Process(root_pid or os.getpid())
        self._samples: list[CpuSample] = []
        self._last: dict[int, tuple[str, float]] = {}
        self._last_machine: tuple[float, float] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="process-cpu", daemon=True)

    def start(self) -> ProcessCpu:
        self._tick(time.time())
        self._thread.start()
        return self

    def stop(self) -> list[CpuSample]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval_s + 1.0)
        return list(self._samples)

    def _loop(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.interval_s):
            now = time.monotonic()
            self._tick(time.time(), now - last)
            last = now

    def _role(self, proc: psutil.Process, seen: dict[int, tuple[str, float]]) -> str:
        parent = seen.get(proc.ppid()) or self._last.get(proc.ppid())
        return role_of(proc.cmdline(), parent[0] if parent else "")

    def _tick(self, t_s: float, elapsed_s: float | None = None) -> None:
        busy: defaultdict[str, float] = defaultdict(float)
        seen: dict[int, tuple[str, float]] = {}
        try:
            children = self._root.children(recursive=True)
        except psutil.Error:
            return
        for proc in children:
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    used = times.user + times.system
                    known = self._last.get(proc.pid)
                    role = known[0] if known else self._role(proc, seen)
            except psutil.Error:
                continue  # it ended between listing and reading
            seen[proc.pid] = (role, used)
            busy[role] += used - (known[1] if known else 0.0)
        self._last = seen
        machine = psutil.cpu_times()
        machine_busy = machine.user + machine.system + getattr(machine, "nice", 0.0) + getattr(machine, "irq", 0.0)
        machine_busy += getattr(machine, "softirq", 0.0)
        if elapsed_s and elapsed_s > 0:
            for role, seconds in sorted(busy.items()):
                self._samples.append(CpuSample(t_s=t_s, worker=role, cpu_pct=round(100.0 * seconds / elapsed_s, 1)))
            if self._last_machine is not None:
                share = 100.0 * (machine_busy - self._last_machine[0]) / (t_s - self._last_machine[1])
                self._samples.append(CpuSample(t_s=t_s, worker=MACHINE, cpu_pct=round(share, 1)))
        self._last_machine = (machine_busy, t_s)
