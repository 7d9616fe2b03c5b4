"""Drill profiles: `profiles/drill.toml` (and copies of it) validated by a typed model.

    [drill]    the fault, when, how long the recovery must hold, the replica's commit mode
    [load]     the messaging users that write sequence-numbered messages through the edge during the drill
    [monitor]  the DR monitor's probe interval, failures before failover, probe timeout
    [gates]    RTO, RPO, error budget, realtime reconnect, meeting re-join

A drill profile is not a run profile (`harness run`): it has no scenario mix or Locust shape, so it has its own
model and the same error style (file, field, value, valid form).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import ConfigError
from harness.model.profile import DEFAULT_PROFILES_DIR

Fault = Literal["kill", "partition", "slow"]
FAULTS: tuple[Fault, ...] = ("kill", "partition", "slow")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DrillSettings(_Strict):
    fault: Fault = "kill"
    """kill: SIGKILL Singapore's region server and its PostgreSQL; partition: the Toxiproxy link between the edge
    and Singapore disabled; slow: latency far above the gate on that link."""
    fault_at_s: float = Field(default=10.0, ge=1)
    """Seconds of steady load before the fault (the baseline the timeline compares with)."""
    hold_s: float = Field(default=30.0, ge=1)
    """RTO ends when the error rate is back under the gate and stays there this long."""
    max_duration_s: float = Field(default=300.0, ge=10)
    """The drill ends by itself after this long, recovered or not."""
    slow_latency_ms: int = Field(default=5000, ge=100)
    synchronous_commit: bool = False
    """Singapore waits for Japan to confirm each commit (RPO 0 by construction; slower writes)."""
    replication_lag_ms: float = Field(default=0.0, ge=0)
    """Extra apply delay on the replica (recovery_min_apply_delay): makes lag visible on the timeline. WAL is still
    shipped at once, so this alone loses nothing at a crash."""
    replication_kbps: int | None = Field(default=None, ge=1)
    """Limit the replication link (Singapore → Japan WAL stream) to this many KB/s: under load an asynchronous
    replica then falls behind, and a kill loses the acknowledged commits never shipped (RPO > 0). None: no limit."""


class DrillLoad(_Strict):
    writers: int = Field(default=16, ge=1, le=500)
    """Messaging users, each sending sequence-numbered messages with client ids to its own conversation."""
    write_interval_ms: float = Field(default=50.0, ge=1)
    """Pause between one writer's sends (a writer waits for each answer: closed loop)."""
    readers: int = Field(default=4, ge=0, le=500)
    read_interval_ms: float = Field(default=50.0, ge=1)
    request_timeout_s: float = Field(default=5.0, gt=0)


class DrillMonitor(_Strict):
    interval_s: float = Field(default=1.0, gt=0)
    failures: int = Field(default=3, ge=1)
    timeout_s: float = Field(default=2.0, gt=0)


class DrillGates(_Strict):
    rto_s: float | None = 1800.0
    """The deployment guide's 30 minutes by default; the reference stack's profile asks for 30 s."""
    rpo_messages: float | None = 0
    """Acknowledged messages missing after failover. With asynchronous commit, loss is possible by design: set it
    to null to measure without gating, or to the number the business accepts."""
    error_budget_pct: float | None = 50.0
    """Failed writes over the whole drill, fault included."""
    error_pct: float = 5.0
    """The load gate: RTO ends when every second's error rate is at or under this for hold_s."""
    realtime_reconnect_s: float | None = 60.0
    meeting_rejoin_s: float | None = 60.0
    recovery_s: float | None = 1800.0
    """Recovery drill: fault → the failed-over system passes the smoke checklist (the guide's 30 minutes)."""


class DrillProfile(_Strict):
    name: str = "drill"
    description: str = ""
    drill: DrillSettings = Field(default_factory=DrillSettings)
    load: DrillLoad = Field(default_factory=DrillLoad)
    monitor: DrillMonitor = Field(default_factory=DrillMonitor)
    gates: DrillGates = Field(default_factory=DrillGates)


def resolve_drill_profile(name_or_path: str) -> Path:
    if name_or_path.endswith(".toml") or "/" in name_or_path:
        return Path(name_or_path)
    for folder in (Path("profiles"), DEFAULT_PROFILES_DIR):
        if (folder / f"{name_or_path}.toml").is_file():
            return folder / f"{name_or_path}.toml"
    raise ConfigError(f"drill profile {name_or_path!r} not found in ./profiles or {DEFAULT_PROFILES_DIR}")


def load_drill_profile(name_or_path: str) -> DrillProfile:
    path = resolve_drill_profile(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read drill profile: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    data.setdefault("name", path.stem)
    try:
        return DrillProfile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            problems.append(f"{path}: {where}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("\n".join(problems)) from None
