"""Run ids name a run's folder directly under the reports dir, so each must be one safe path component.

    --run-id smoke-nightly-42   →  reports/smoke-nightly-42/
    --run-id ../../escape       →  refused (ConfigError, exit 2): it would write outside the reports dir

Generated ids are built from `safe_part` pieces (a profile's name may hold anything TOML allows), so they always pass.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.errors import ConfigError

RUN_ID_MAX_CHARS = 100
"""Longest run id: far more than any generated one, short enough for every file system's name limit (255)."""
RUN_ID_FORM = (
    f"1-{RUN_ID_MAX_CHARS} letters, digits, '.', '_' and '-', starting with a letter or digit "
    "(e.g. smoke-nightly-42); it names one folder directly under the reports dir"
)
_RUN_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{RUN_ID_MAX_CHARS - 1}}}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def check_run_id(value: str, flag: str = "--run-id") -> str:
    """`value` when it is one safe path component (never '.', '..', a path, or a name starting with '-' or '.')."""
    if not _RUN_ID.fullmatch(value):
        raise ConfigError(f"{flag}: {value!r} is not a run id; use {RUN_ID_FORM}")
    return value


def run_dir(reports_dir: Path, run_id: str, flag: str = "--run-id") -> Path:
    """The run's folder: `reports_dir / run_id`, once the id is checked (every command's one way to name it)."""
    return reports_dir / check_run_id(run_id, flag)


def safe_part(text: str, max_chars: int = 40) -> str:
    """`text` made fit for a generated run id: runs of other characters become '-', ends trimmed; 'run' if empty."""
    return _UNSAFE.sub("-", text).strip("-._")[:max_chars].strip("-._") or "run"
