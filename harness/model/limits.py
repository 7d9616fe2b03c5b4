"""Upper bounds on the sizes a command line asks for, so a typo (`--users 10000000`, `--duration 5000h`) is refused
with exit 2 before anything starts, instead of starting a run nobody meant.

Each bound is far above what a real run has needed (a distributed run on Kubernetes included), so only a slip of
the keyboard meets it. Someone who means it sets HARNESS_LIMITS=off; a profile file's values are not bounded (a file
is written and reviewed on purpose). docs/safety.md lists the bounds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from harness.errors import ConfigError

MAX_USERS = 1_000_000
"""Peak users, capacity user levels, --max-users pools, provisioned test users, drill writers."""
MAX_SPAWN_RATE = 10_000.0
"""Users started per second (Locust's own advice is far lower per worker)."""
MAX_RATE = 1_000_000.0
"""Total iterations per second of an open-model capacity step (`--start/--step/--max`)."""
MAX_DURATION_S = 7 * 24 * 3600.0
"""A run's load (--duration), a drill's --max-duration or --fault-at: one week."""
MAX_STEP_S = 24 * 3600.0
"""One capacity step's --hold or --settle, or a drill's --hold: one day."""
MAX_WORKERS = 1_024
"""Local Locust worker processes (--workers); a distributed run adds workers on other machines instead."""

LIMITS_VARIABLE = "HARNESS_LIMITS"
"""`HARNESS_LIMITS=off` lifts every bound here."""


def lifted(environ: Mapping[str, str] | None = None) -> bool:
    return (os.environ if environ is None else environ).get(LIMITS_VARIABLE, "").strip().lower() == "off"


def check_at_most(
    flag: str, text: str, value: float, limit: float, shown: str, environ: Mapping[str, str] | None = None
) -> None:
    """ConfigError unless `value` (read from `text`) <= `limit`, or the bounds are lifted; `shown` is the limit as
    the user reads it (`1,000,000 users`, `7 days (168h)`)."""
    message = too_large(text, value, limit, shown, environ)
    if message is not None:
        raise ConfigError(f"{flag}: {message}")


def too_large(
    text: str, value: float, limit: float, shown: str, environ: Mapping[str, str] | None = None
) -> str | None:
    """Why `value` is refused (without the flag, for argparse types), or None."""
    if value <= limit or lifted(environ):
        return None
    return (
        f"{text!r} is more than {shown}, the most a command line may ask for (a typo?); if you mean it, set "
        f"{LIMITS_VARIABLE}=off"
    )
