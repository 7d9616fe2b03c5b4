"""A lock file so two DR processes never act at once (two monitors, or a monitor and an operator's failover).

flock() is released by the kernel when the process dies, so a killed monitor never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from harness.errors import ConfigError


class DrLock:
    def __init__(self, state_dir: Path, name: str) -> None:
        self.path = state_dir / f"{name}.lock"
        self._fd: int | None = None

    def __enter__(self) -> DrLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ConfigError(
                f"another harness dr process (pid {holder}) holds {self.path}: wait for it or stop it; "
                "two processes must never fail over at once"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None
