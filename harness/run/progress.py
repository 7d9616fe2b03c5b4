"""Progress of a running load on stderr: one plain line every few seconds (CI logs keep every line), read from
the progress.json the Locust master writes; and the watch loop that ends a run that overruns its plan."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from harness.gates.verdict import fmt
from harness.loadgen import env as hs
from harness.loadgen.cluster import LocustCluster
from harness.model.profile import Profile
from harness.run.signals import StopRequest

PROGRESS_INTERVAL_S = 2.0
"""How often the progress line is printed."""
OVERRUN_GRACE_S = 30.0
"""How long past its planned end (plus the worker wait) a run may go before it is stopped and marked partial."""


def say(log: TextIO, text: str) -> None:
    print(f"harness: {text}", file=log, flush=True)


class ProgressPrinter:
    """One plain line per interval (no carriage returns: CI logs keep every line readable)."""

    RPS_WINDOW_S = 6.0
    """Throughput is the request delta over about this long (workers report every 3 s)."""

    def __init__(self, name: str, log: TextIO, interval_s: float) -> None:
        self.name = name
        self.log = log
        self.interval_s = interval_s
        self._next = time.monotonic() + interval_s
        self._history: deque[tuple[float, int]] = deque()

    def due(self) -> bool:
        """Time for the next line (progress.json is read only then: with its `live` figures it is not tiny)."""
        return time.monotonic() >= self._next

    def maybe_print(self, progress: dict[str, Any] | None) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval_s
        print(self.line(progress), file=self.log, flush=True)

    def line(self, p: dict[str, Any] | None) -> str:
        head = f"harness: {self.name}"
        if not p:
            return f"{head}  starting Locust"
        workers = f"workers {p.get('workers', 0)}/{p.get('workers_expected', '?')}"
        if p.get("state") == "waiting" or p.get("started_s") is None:
            return f"{head}  waiting for {workers}"
        elapsed_s = max(0.0, float(p["t_s"]) - float(p["started_s"]))
        planned_s = float(p.get("planned_s") or 0)
        left_s = max(0.0, planned_s - elapsed_s)
        p95 = p.get("p95_ms")
        return (
            f"{head}  {elapsed_s:.0f}s/{planned_s:.0f}s  users {p.get('users', 0)}  {workers}  "
            f"rps {self._rps(p):.1f}  "
            f"p95 {fmt(float(p95), 'ms') if p95 else 'n/a'}  errors {float(p.get('error_pct') or 0):.2f} %  "
            f"{left_s:.0f} s left"
        )

    def _rps(self, p: dict[str, Any]) -> float:
        """The master's rate over requests (progress.json `rps`, from its live tally), else the request delta."""
        if p.get("live") is not None and p.get("rps") is not None:
            return float(p["rps"])
        t_s, requests = float(p["t_s"]), int(p.get("requests") or 0)
        self._history.append((t_s, requests))
        while len(self._history) > 2 and t_s - self._history[0][0] > self.RPS_WINDOW_S:
            self._history.popleft()
        t0, r0 = self._history[0]
        return (requests - r0) / (t_s - t0) if t_s > t0 else 0.0


def read_progress(out_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((out_dir / hs.PROGRESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


MONITOR_INTERVAL_S = 1.0
"""How often a run's monitor (`harness capacity`'s step judge) is asked whether to stop."""


def watch(
    cluster: LocustCluster,
    profile: Profile,
    stop: StopRequest,
    out_dir: Path,
    printer: ProgressPrinter,
    monitor: Callable[[Path], str | None] | None = None,
) -> bool:
    """Print progress until the master exits by itself (False) or the run is stopped, overruns or its monitor
    gives a reason to stop (True)."""
    next_check = time.monotonic() + MONITOR_INTERVAL_S
    deadline = time.monotonic() + profile.load.total_duration_s + cluster.config.workers_wait_s + OVERRUN_GRACE_S
    while cluster.master_running():
        if stop.requested:
            return True
        if time.monotonic() > deadline:
            print(
                f"harness: the run did not end {OVERRUN_GRACE_S:.0f} s after its planned end; stopping",
                file=printer.log,
            )
            return True
        if printer.due():
            printer.maybe_print(read_progress(out_dir))
        if monitor is not None and time.monotonic() >= next_check:
            next_check = time.monotonic() + MONITOR_INTERVAL_S
            reason = monitor(out_dir)
            if reason:
                say(printer.log, f"stopping the run: {reason}")
                return True
        stop.wait(0.2)
    return False
