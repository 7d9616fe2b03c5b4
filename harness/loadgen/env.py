"""The `HARNESS_*` environment variables through which the orchestrator tells Locust processes about the run.

Environment rather than command-line options: Locust's parser rejects unknown options unless the locustfile adds
them, and the same variables work for a master and workers started by hand or by Kubernetes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError
from harness.model.profile import Profile, load_profile
from harness.scenarios.settings import WORKERS_EXPECTED

PROFILE = "HARNESS_PROFILE"
"""Path of the run's profile: a profiles/*.toml file or the orchestrator's effective profile.json."""
RUN_ID = "HARNESS_RUN_ID"
OUT_DIR = "HARNESS_OUT_DIR"
"""Folder the master writes result.json and progress.json into (reports/<run-id>/)."""
TARGET_LABEL = "HARNESS_TARGET_LABEL"
"""What reports show as the target (a URL without credentials)."""
WORKER_NAME = "HARNESS_WORKER_NAME"
"""Name a worker reports under (default: Locust's client id)."""
HOST = "HARNESS_HOST"
"""A worker group's base URL (China runs: the group's Toxiproxy listener). The master then runs without --host,
because Locust's master overwrites every worker's host with its own; the plugin sets the user classes' host."""
SAMPLE_LOG = "HARNESS_SAMPLE_LOG"
"""Test mode: "1" makes each worker also write every sample to samples-<worker>.jsonl in the output folder."""
SNAPSHOT_S = "HARNESS_SNAPSHOT_S"
"""Seconds between the master's snapshot.json (the result so far, marked partial); unset: none. `harness capacity`
sets it to judge each step while the run goes on and stop at the first breaking one."""

RESULT_FILE = "result.json"
PROGRESS_FILE = "progress.json"
SNAPSHOT_FILE = "snapshot.json"


@dataclass(frozen=True)
class Settings:
    profile_path: Path
    run_id: str
    out_dir: Path
    workers_expected: int
    target_label: str
    worker_name: str | None
    sample_log: bool
    host: str | None = None
    snapshot_s: float | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings | None:
        """The run's settings, or None for a plain `locust -f` run without the harness."""
        env = os.environ if environ is None else environ
        profile = env.get(PROFILE)
        if not profile:
            return None
        return cls(
            profile_path=Path(profile),
            run_id=env.get(RUN_ID) or "adhoc",
            out_dir=Path(env.get(OUT_DIR) or "."),
            workers_expected=int(env.get(WORKERS_EXPECTED) or 1),
            target_label=env.get(TARGET_LABEL) or "",
            worker_name=env.get(WORKER_NAME) or None,
            sample_log=env.get(SAMPLE_LOG) == "1",
            host=env.get(HOST) or None,
            snapshot_s=_positive_seconds(SNAPSHOT_S, env.get(SNAPSHOT_S)),
        )


def _positive_seconds(name: str, text: str | None) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ConfigError(f"{name}: {text!r} is not a number of seconds above 0 (e.g. {name}=2)")
    return value


def read_profile(path: Path) -> Profile:
    """A profiles/*.toml file, or the effective profile.json the orchestrator writes (overrides applied)."""
    if path.suffix == ".json":
        try:
            return Profile.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read the effective profile: {exc}") from None
    return load_profile(path)
