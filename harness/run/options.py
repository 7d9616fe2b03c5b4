"""What a run is asked to do: `RunOptions` from the CLI, the effective profile (overrides applied and re-validated)
and the locustfile to run."""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.loadgen.locustfiles import shipped_locustfile
from harness.model.files import read_text
from harness.model.profile import GatesConfig, Profile
from harness.monitor import MetricsOptions
from harness.run.progress import PROGRESS_INTERVAL_S

FALLBACK_LOCUSTFILE = Path(str(importlib.resources.files("harness.loadgen") / "fallback_locustfile.py")).resolve()
"""A light load without accounts (health, sign-in, a REST read): `--locustfile` it to check a target's basics."""
DEFAULT_LOCUSTFILE = Path("locustfiles") / "mixed.py"
"""The user's own mix when run from a folder holding one (edited copies win over the shipped file)."""
FALLBACK_GATES_OFF = ("delivery_p95_ms", "delivery_max_loss_pct", "delivery_max_duplicates", "meeting_join_p95_ms")
"""Gates the fallback locustfile has no samples for (it does no realtime delivery or meeting joins)."""


@dataclass
class RunOptions:
    profile: str
    """A profile name (profiles/<name>.toml) or a path to a .toml file."""
    workers: int | None = None
    """Local Locust workers; None = the profile's `workers`, else one per CPU."""
    duration_s: float | None = None
    users: int | None = None
    spawn_rate: float | None = None
    host: str | None = None
    env_file: Path | None = None
    confirm_remote: bool = False
    reports_dir: Path = Path("reports")
    run_id: str | None = None
    locustfile: Path | None = None
    checks: bool = False
    """Run the smoke checklist before the load."""
    progress_interval_s: float = PROGRESS_INTERVAL_S
    network: str | None = None
    """Network profile (netem/<name>.toml) for the groups claiming country CN; None = the profile's own."""
    overlays: tuple[str, ...] = ()
    """Overlays stacked on those groups' network, in order."""
    kernel: bool = False
    """Run shaped groups' workers in a network namespace with kernel packet loss (root only)."""
    keep_users: bool = False
    """Leave the provisioned test users (and credentials.json) in place after the run."""
    migrations_dir: Path | None = None
    """Supabase migrations the reference stack applies (None: the app's own); ignored against a real target."""
    snapshot_s: float | None = None
    """Seconds between the master's snapshot.json (`harness capacity` judges steps from it); None: no snapshots."""
    master: bool = False
    """Distributed: start the Locust master only and wait for `expect_workers` remote `harness worker`s."""
    expect_workers: int = 1
    master_bind: str = "0.0.0.0"
    """Where a distributed run's master listens for workers (Locust on master_port, the bootstrap on +1)."""
    master_port: int = 5557
    workers_wait_s: int = 120
    """A distributed run is invalid when its workers have not all joined by then."""
    metrics: MetricsOptions | None = None
    """Serve the run's Prometheus metrics (harness/monitor/, docs/monitoring.md); None: off."""


def effective_profile(profile: Profile, options: RunOptions, where: str) -> Profile:
    """The profile with --duration/--users/--spawn-rate applied and re-validated."""
    overrides = {"duration_s": options.duration_s, "users": options.users, "spawn_rate": options.spawn_rate}
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return profile
    if profile.load.stages is not None:
        flags = ", ".join(f"--{k.removesuffix('_s').replace('_', '-')}" for k in given)
        raise ConfigError(f"{flags}: {where} uses [[load.stages]]; edit its stages (or copy it) to change the shape")
    data = profile_data(profile)
    data["load"].update(given)
    try:
        new = Profile.model_validate(data)
    except ValueError as exc:
        raise ConfigError(f"{where} with {given}: {exc}") from None
    start_s, end_s = new.plateau_s()
    if end_s - start_s < new.window_s:
        raise ConfigError(
            f"--duration: {new.load.total_duration_s:g} s leaves a plateau of {max(0.0, end_s - start_s):g} s, shorter "
            f"than one window ({new.window_s:g} s); give at least {new.load.total_duration_s + new.window_s:g} s"
        )
    return new


def profile_data(profile: Profile) -> dict[str, Any]:
    """JSON-able data that validates back into the same profile (`workers = None` means "absent" in TOML)."""
    data = profile.model_dump(mode="json")
    if data.get("workers") is None:
        data.pop("workers", None)
    return data


def choose_locustfile(explicit: Path | None) -> tuple[Path, bool]:
    """(locustfile, is_fallback): --locustfile, else ./locustfiles/mixed.py, else the mix shipped with harness."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"--locustfile: {explicit} does not exist (give a path to a .py locustfile)")
        _check_python(explicit)
        return explicit, explicit.resolve() == FALLBACK_LOCUSTFILE
    if DEFAULT_LOCUSTFILE.is_file():
        return DEFAULT_LOCUSTFILE, False
    return shipped_locustfile(DEFAULT_LOCUSTFILE.name), False


def _check_python(path: Path) -> None:
    """A locustfile that is not Python text fails here, before anything starts (not as missing workers later)."""
    try:
        compile(read_text(path, "locustfile"), str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise ConfigError(f"--locustfile: {path}:{exc.lineno}: not valid Python: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, nesting the compiler cannot take
        raise ConfigError(f"--locustfile: {path}: not valid Python: {exc}") from None


def without_gates(gates: GatesConfig, names: tuple[str, ...]) -> GatesConfig:
    return gates.model_copy(update=dict.fromkeys(names))
