"""The DR journal: one JSON line per probe and per action, on stdout and in `<state-dir>/journal.jsonl`.

`harness dr status` reads the last actions back; `state.json` keeps the few facts a later run needs (the region a
`--switch-cmd` last moved traffic to, so a second failover does not run it again). A line never holds a secret:
callers log region names, URLs without credentials, and error texts of the regions' own answers.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

DEFAULT_STATE_DIR = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "harness-dr"


def _now_iso(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Journal:
    def __init__(self, state_dir: Path, out: TextIO | None = sys.stdout) -> None:
        self.state_dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "journal.jsonl"
        self.out = out
        self.listeners: list[Any] = []
        """Callables given every entry (the drill's timeline)."""

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        unix_s = time.time()
        entry = {"ts": _now_iso(unix_s), "unix_s": round(unix_s, 3), "event": event, **fields}
        line = json.dumps(entry, default=str)
        if event != "probe":
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
        if self.out is not None:
            print(line, file=self.out, flush=True)
        for listener in self.listeners:
            listener(entry)
        return entry

    def entries(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except (ValueError, RecursionError):
                    continue  # a line cut by a crash, or not ours
                if isinstance(entry, dict):
                    yield entry

    def last_actions(self, n: int = 10) -> list[dict[str, Any]]:
        return [e for e in self.entries() if e.get("event") != "probe"][-n:]

    def _state_file(self) -> Path:
        return self.state_dir / "state.json"

    def state(self) -> dict[str, Any]:
        # Unreadable or not an object: treated as empty, so a damaged file never stops a failover (it only spares
        # a second run of --switch-cmd).
        try:
            loaded = json.loads(self._state_file().read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def set_state(self, **values: Any) -> None:
        merged = {**self.state(), **values}
        tmp = self._state_file().with_suffix(".tmp")
        tmp.write_text(json.dumps(merged, indent=2))
        tmp.replace(self._state_file())
