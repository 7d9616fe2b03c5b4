"""Ctrl-C and SIGTERM during a run: the first stops the load gracefully (the report is still written, marked
partial), a second aborts at once (KeyboardInterrupt: the step under way is cut short, clean-up still runs and
the report is written from what exists). Either way the run exits 128 + the signal's number (130 for SIGINT)."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, TextIO

from harness.procs import interrupts


class StopRequest:
    """First SIGINT/SIGTERM: stop gracefully (set `event`); a second one: abort (KeyboardInterrupt)."""

    def __init__(self, log: TextIO) -> None:
        self.event = threading.Event()
        self.log = log
        self.signal_name = ""
        self.signum = 0
        self.aborted = False
        """A second signal came: the run was cut short where it stood."""
        self._old: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def wait(self, timeout_s: float) -> bool:
        return self.event.wait(timeout_s)

    @property
    def exit_code(self) -> int | None:
        """128 + the signal's number once one came (shells report a process a signal ended so), else None."""
        return 128 + self.signum if self.requested else None

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.event.is_set():
            self.aborted = True
            if interrupts.held():  # inside a fork or a child's start: raised when that is done
                interrupts.defer()
                return
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        self.signum = signum
        self.event.set()
        print(
            f"harness: {self.signal_name}: stopping; the report will be marked partial (again to abort)", file=self.log
        )

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
