"""The locustfiles shipped with harness: the checkout's `locustfiles/`, packaged in the wheel as
`harness.locustfiles` (found with importlib.resources, so a wheel install outside a checkout runs them too).

Only paths: nothing here imports Locust (the orchestrator hands the path to `locust -f`)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from harness.errors import ConfigError

PACKAGE = "harness.locustfiles"


def shipped_locustfile(name: str) -> Path:
    """The path of shipped locustfile `name` (e.g. "mixed.py"); ConfigError naming the shipped ones if none."""
    with importlib.resources.as_file(importlib.resources.files(PACKAGE)) as folder:
        directory = folder.resolve()
    path = directory / name
    if Path(name).name != name or not name.endswith(".py") or name == "__init__.py" or not path.is_file():
        shipped = ", ".join(sorted(p.name for p in directory.glob("*.py") if p.name != "__init__.py"))
        raise ConfigError(f"no shipped locustfile {name!r} (shipped: {shipped or 'none'})")
    return path
