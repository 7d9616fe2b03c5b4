"""Ctrl-C and SIGTERM during a run: the first stops the load gracefully (the report is still written, marked
partial), a second aborts at once."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, TextIO


class StopRequest:
    """First SIGINT/SIGTERM: stop gracefully (set `event`); a second one: abort (KeyboardInterrupt)."""

    def __init__(self, log: TextIO) -> None:
        self.event = threading.Event()
        self.log = log
        self.signal_name = ""
        self._old: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def wait(self, timeout_s: float) -> bool:
        return self.event.wait(timeout_s)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
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
