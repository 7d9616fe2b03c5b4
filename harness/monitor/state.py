"""What /metrics shows at any moment: the orchestrator's side of the run (its state, run id, verdict) plus the
master's latest progress.json, read at scrape time. Thread-safe: the orchestrator writes, the HTTP server reads."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.gates.verdict import Verdict
from harness.model.live import Live
from harness.monitor.names import RunState


@dataclass(frozen=True)
class RunLabels:
    run_id: str
    profile: str
    target: str


@dataclass(frozen=True)
class View:
    """One scrape's figures."""

    state: RunState
    run: RunLabels | None = None
    progress: dict[str, Any] | None = None
    """The master's progress.json (users, workers); None before it writes one."""
    live: Live | None = None
    verdict: Verdict | None = None
    """Set once the run is finished and judged."""


class RunMonitor:
    """The run's state as the orchestrator moves through it:

        starting ──► running (the master reports running) ──► stopping ──► finished (verdict, if one came out)

    `starting` covers the target, test users, shaping and the wait for workers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._run: RunLabels | None = None
        self._progress_path: Path | None = None
        self._stopping = False
        self._finished = False
        self._verdict: Verdict | None = None

    def begin(self, run_id: str, profile: str, target: str, progress_path: Path) -> None:
        with self._lock:
            self._run = RunLabels(run_id, profile, target)
            self._progress_path = progress_path

    def stopping(self) -> None:
        with self._lock:
            self._stopping = True

    def finish(self, verdict: Verdict | None) -> None:
        with self._lock:
            self._finished = True
            self._verdict = verdict

    @property
    def finished(self) -> bool:
        return self._finished

    def view(self) -> View:
        with self._lock:
            run, path, stopping, finished, verdict = (
                self._run, self._progress_path, self._stopping, self._finished, self._verdict,
            )  # fmt: skip
        progress = _read(path) if path is not None else None
        state: RunState
        if finished:
            state = "finished"
        elif stopping or (progress is not None and progress.get("state") == "finished"):
            state = "stopping"  # also when the master ended by itself, before the orchestrator noticed
        elif progress is not None and progress.get("state") == "running":
            state = "running"
        else:
            state = "starting"
        return View(state, run, progress, Live.from_progress(progress), verdict if finished else None)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
