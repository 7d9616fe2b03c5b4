"""Drill profiles: `profiles/drill.toml` (and copies of it) validated by a typed model.

    [drill]    the fault, when, how long the recovery must hold, the replica's commit mode
    [load]     the messaging users that write sequence-numbered messages through the edge during the drill
    [monitor]  the DR monitor's probe interval, failures before failover, probe timeout
    [gates]    RTO, RPO, error budget, realtime reconnect, meeting re-join

A drill profile is not a run profile (`harness run`): it has no scenario mix or Locust shape, so it has its own
model and the same error style (file, field, value, valid form).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from harness.errors import ConfigError
from harness.model.files import parse_toml, read_text, show_value
from harness.model.profile import DEFAULT_PROFILES_DIR, number_check

Fault = Literal["kill", "partition", "slow"]
FAULTS: tuple[Fault, ...] = ("kill", "partition", "slow")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _n(what: str, example: str, **bounds: Any) -> BeforeValidator:
    """A number field whose message says the valid range (run profiles' validator: TOML's nan and inf refused)."""
    return BeforeValidator(number_check(what, example, **bounds))


_off = {"off_allowed": True}


class DrillSettings(_Strict):
    fault: Fault = "kill"
    """kill: SIGKILL Singapore's region server and its PostgreSQL; partition: the Toxiproxy link between the edge
    and Singapore disabled; slow: latency far above the gate on that link."""
    fault_at_s: Annotated[float, _n("a number of seconds", "10", low=1)] = 10.0
    """Seconds of steady load before the fault (the baseline the timeline compares with)."""
    hold_s: Annotated[float, _n("a number of seconds", "30", low=1)] = 30.0
    """RTO ends when the error rate is back under the gate and stays there this long."""
    max_duration_s: Annotated[float, _n("a number of seconds", "300", low=10)] = 300.0
    """The drill ends by itself after this long, recovered or not."""
    slow_latency_ms: Annotated[int, _n("a whole number of milliseconds", "5000", low=100, integer=True)] = 5000
    synchronous_commit: bool = False
    """Singapore waits for Japan to confirm each commit (RPO 0 by construction; slower writes)."""
    replication_lag_ms: Annotated[float, _n("a number of milliseconds", "0")] = 0.0
    """Extra apply delay on the replica (recovery_min_apply_delay): makes lag visible on the timeline. WAL is still
    shipped at once, so this alone loses nothing at a crash."""
    replication_kbps: Annotated[int | None, _n("a whole number of KB/s", "20", low=1, integer=True, **_off)] = None
    """Limit the replication link (Singapore → Japan WAL stream) to this many KB/s: under load an asynchronous
    replica then falls behind, and a kill loses the acknowledged commits never shipped (RPO > 0). None: no limit."""


class DrillLoad(_Strict):
    writers: Annotated[int, _n("a whole number of users", "16", low=1, high=500, integer=True)] = 16
    """Messaging users, each sending sequence-numbered messages with client ids to its own conversation."""
    write_interval_ms: Annotated[float, _n("a number of milliseconds", "50", low=1)] = 50.0
    """Pause between one writer's sends (a writer waits for each answer: closed loop)."""
    readers: Annotated[int, _n("a whole number of users", "4", high=500, integer=True)] = 4
    read_interval_ms: Annotated[float, _n("a number of milliseconds", "50", low=1)] = 50.0
    request_timeout_s: Annotated[float, _n("a number of seconds", "5", low=0, low_inclusive=False)] = 5.0


class DrillMonitor(_Strict):
    interval_s: Annotated[float, _n("a number of seconds", "1", low=0, low_inclusive=False)] = 1.0
    failures: Annotated[int, _n("a whole number of rounds", "3", low=1, integer=True)] = 3
    timeout_s: Annotated[float, _n("a number of seconds", "2", low=0, low_inclusive=False)] = 2.0


class DrillGates(_Strict):
    rto_s: Annotated[float | None, _n("a number of seconds", "1800", **_off)] = 1800.0
    """The deployment guide's 30 minutes by default; the reference stack's profile asks for 30 s."""
    rpo_messages: Annotated[float | None, _n("a number of messages", "0", **_off)] = 0
    """Acknowledged messages missing after failover. With asynchronous commit, loss is possible by design: set it
    to null to measure without gating, or to the number the business accepts."""
    error_budget_pct: Annotated[float | None, _n("a percentage", "50", high=100, **_off)] = 50.0
    """Failed writes over the whole drill, fault included."""
    error_pct: Annotated[float, _n("a percentage", "5", high=100)] = 5.0
    """The load gate: RTO ends when every second's error rate is at or under this for hold_s."""
    realtime_reconnect_s: Annotated[float | None, _n("a number of seconds", "60", **_off)] = 60.0
    meeting_rejoin_s: Annotated[float | None, _n("a number of seconds", "60", **_off)] = 60.0
    recovery_s: Annotated[float | None, _n("a number of seconds", "1800", **_off)] = 1800.0
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
    data = parse_toml(read_text(path, "drill profile"), str(path))
    data.setdefault("name", path.stem)
    try:
        return DrillProfile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            if err["type"] == "harness":  # number_check's message: "<value> is not <what> <range> (e.g. <example>)"
                problems.append(f"{path}: {where}: {show_value(err.get('input'))} {err['msg']}")
            else:
                problems.append(f"{path}: {where}: {err['msg']} (got {show_value(err.get('input'))})")
        raise ConfigError("\n".join(problems)) from None
