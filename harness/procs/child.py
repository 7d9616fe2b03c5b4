"""Child processes of the harness: every server piece, Locust master and worker is one `Child`.

Each child runs in its own session (a terminal's Ctrl-C reaches only the harness, which stops children in order)
and gets SIGTERM when the harness dies (PR_SET_PDEATHSIG), so a killed run never leaves servers or workers behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from harness.procs import interrupts

STOP_TIMEOUT_S = 10.0
"""How long `stop()` waits after SIGTERM before it kills."""


def die_with_parent() -> None:
    """In a child (preexec_fn): Linux sends it SIGTERM when the parent exits (no-op elsewhere)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)


class Child:
    """One child process and its log file.

    `pipe_stdout=True` keeps stdout for the parent to read (a ready handshake) and sends stderr to the log;
    otherwise both go to the log.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        pipe_stdout: bool = False,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in close()
        try:
            with interrupts.holding():  # a second Ctrl-C waits until the child is ours to stop
                self.proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE if pipe_stdout else self._log,
                    stderr=self._log if pipe_stdout else subprocess.STDOUT,
                    env=None if env is None else dict(env),
                    start_new_session=True,
                    preexec_fn=die_with_parent if sys.platform == "linux" else None,
                )
        except KeyboardInterrupt:
            if hasattr(self, "proc"):
                self.kill_group()
                self.close()
            else:
                self._log.close()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        """None while it runs; else its exit status (negative: the signal that ended it, as subprocess reports)."""
        return self.proc.poll()

    def signal(self, sig: int) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    def wait(self, timeout_s: float) -> bool:
        """True when the process has exited within `timeout_s`."""
        try:
            self.proc.wait(max(0.0, timeout_s))
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill_group(self) -> None:
        """SIGKILL the child's whole session (whatever it spawned goes too)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM, then SIGKILL after `timeout_s`; then release the pipe and the log. Safe to call again."""
        self.signal(signal.SIGTERM)
        if not self.wait(timeout_s):
            self.kill_group()
        self.close()

    def close(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def describe_exit(code: int) -> str:
    """`exit code 3`, or `killed by SIGKILL (-9)` for a child a signal ended."""
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"killed by {name} ({code})"
