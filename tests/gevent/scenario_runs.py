"""Run locustfiles' user classes in this (gevent-patched) process against a reference stack, and collect what
they fire. In-process rather than `locust` subprocesses: the same runner code, seconds faster per run."""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import gevent
from locust import constant
from locust.env import Environment
from locust.event import Events

from harness.scenarios.runstate import RunState, install
from harness.scenarios.settings import ScenarioSettings

LOCUSTFILES = Path(__file__).resolve().parents[2] / "locustfiles"


def load_locustfile(name: str) -> ModuleType:
    """Import locustfiles/<name>.py as Locust does (its folder on sys.path, for mixed.py's sibling imports)."""
    if str(LOCUSTFILES) not in sys.path:
        sys.path.insert(0, str(LOCUSTFILES))
    cached = sys.modules.get(name)
    if cached is not None and Path(getattr(cached, "__file__", "")).parent == LOCUSTFILES:
        return cached
    spec = importlib.util.spec_from_file_location(name, LOCUSTFILES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def quick(cls: type, wait_s: float = 0.05) -> type:
    """The same user class (same name, so the same labels) with a short wait between tasks."""
    return type(cls.__name__, (cls,), {"wait_time": constant(wait_s), "__module__": cls.__module__})


@dataclass
class Run:
    environment: Environment
    state: RunState | None
    fired: list[dict[str, Any]] = field(default_factory=list)
    user_errors: list[BaseException] = field(default_factory=list)

    def names(self, *, failed: bool | None = None) -> set[str]:
        return {
            f"{e['request_type']} {e['name']}"
            for e in self.fired
            if failed is None or (e["exception"] is not None) == failed
        }

    def samples(self, name: str, *, failed: bool | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.fired
            if f"{e['request_type']} {e['name']}" == name and (failed is None or (e["exception"] is not None) == failed)
        ]

    def failures(self) -> list[str]:
        return [str(e["exception"]) for e in self.fired if e["exception"] is not None]


def run_users(
    user_classes: Sequence[type],
    host: str,
    users: int,
    settings: ScenarioSettings,
    *,
    min_s: float,
    max_s: float,
    done: Callable[[Run], bool] = lambda run: True,
    during: Callable[[Run], None] | None = None,
) -> Run:
    """Start `users` users, run at least `min_s` and until `done(run)` (at most `max_s`), then stop and quit the
    way `locust --headless` does (test_stop, then quitting)."""
    environment = Environment(user_classes=list(user_classes), events=Events(), host=host)
    runner = environment.create_local_runner()
    run = Run(environment, install(environment, settings))
    environment.events.request.add_listener(lambda **kw: run.fired.append(kw))
    environment.events.user_error.add_listener(lambda exception, **_: run.user_errors.append(exception))
    started = time.monotonic()
    runner.start(users, spawn_rate=users)
    if during is not None:
        during(run)
    while time.monotonic() - started < max_s:
        if time.monotonic() - started >= min_s and done(run):
            break
        gevent.sleep(0.1)
    runner.quit()
    environment.events.quitting.fire(environment=environment, reverse=True)
    return run
