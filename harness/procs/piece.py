"""`PieceProcess`: one server piece in its own process, started through `launch` and ready when it says so.

parent ──spawn──► python -m harness.procs.launch MODULE:FACTORY --port 0 --options {...}
       ◄─stdout── HARNESS_READY {"piece": "edge", "port": 41234}      (stderr → <log_dir>/<name>.log)
              or  HARNESS_FAILED {"piece": "primary", "error": "..."}  (raised here: ConfigError or TargetUnreachable)
"""

from __future__ import annotations

import json
import os
import selectors
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, TargetUnreachable
from harness.procs.child import Child
from harness.procs.launch import FAILED_PREFIX, READY_PREFIX, SECRET_OPTIONS_ENV

START_TIMEOUT_S = 30.0
"""How long a piece may take to listen before the harness gives up (imports dominate: ~1-2 s here)."""


class PieceProcess(Child):
    """One running piece: a `Child` whose stdout carries the ready line, and the port it reported."""

    def __init__(
        self,
        name: str,
        factory: str,
        log_path: Path,
        *,
        options: Mapping[str, Any] | None = None,
        secret_options: Mapping[str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """`secret_options` reach the factory through the child's environment, not its command line."""
        argv = [sys.executable, "-m", "harness.procs.launch", factory, "--name", name, "--bind", host,
                "--port", str(port), "--options", json.dumps(dict(options or {}))]  # fmt: skip
        env = {**os.environ, SECRET_OPTIONS_ENV: json.dumps(dict(secret_options))} if secret_options else None
        super().__init__(name, argv, log_path, pipe_stdout=True, env=env)
        try:
            self.port = self._wait_ready()
        except KeyboardInterrupt:  # a second Ctrl-C while it starts: the caller never gets it, so stop it here
            self.stop()  # SIGTERM first: a region then stops its PostgreSQL (in a session of its own)
            raise

    def _wait_ready(self) -> int:
        assert self.proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT_S
        buffer = b""
        try:
            while time.monotonic() < deadline:
                if not selector.select(timeout=0.2):
                    if not self.running():
                        break
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                buffer += chunk
                for line in buffer.decode(errors="replace").splitlines():
                    if line.startswith(READY_PREFIX):
                        return int(json.loads(line[len(READY_PREFIX) :])["port"])
                    if line.startswith(FAILED_PREFIX) and line.endswith("}"):
                        self._raise_failure(json.loads(line[len(FAILED_PREFIX) :]))
        finally:
            selector.close()
        self.stop()
        raise TargetUnreachable(
            f"piece {self.name!r} did not start within {START_TIMEOUT_S:.0f} s; "
            f"its log ({self.log_path}) ends with:\n{self.log_tail()}"
        )

    def _raise_failure(self, failure: dict[str, Any]) -> None:
        """The piece said why it cannot start: stop it and raise that, a ConfigError when the input was wrong."""
        self.stop()
        error = ConfigError if failure.get("config_error") else TargetUnreachable
        raise error(f"{self.name}: {failure.get('error')}")
