"""A drill's result as pure data: what the failover and recovery drills measure and the reports render.

    DrillResult
      timeline   one DrillSample per second: writes sent, failed, their p95, the replication lag, the rps
      events     the fault, every DR action (detect, promote, switch, verify), recovery, and phase marks
      measures   one Measure per figure (detect, promote, first write, RTO, RPO, duplicates, realtime reconnect,
                 meeting re-join...), each with its gate and verdict; one JUnit testcase each
      phases     the recovery drill's phases (fault, failover, smoke, failback, smoke), each with its errors

Times are seconds from the drill's start (`t_s`); `started_unix_s` anchors them. Written as `drill.json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

EventKind = Literal["fault", "decision", "action", "recovered", "phase", "note"]


@dataclass(frozen=True)
class DrillSample:
    t_s: int
    """Start of this one-second bucket, from the drill's start."""
    sent: int
    failed: int
    p95_ms: float | None
    lag_ms: float | None = None
    """Replication lag the primary reported in this second (None when it did not answer)."""

    @property
    def error_pct(self) -> float:
        return 100.0 * self.failed / self.sent if self.sent else 0.0


@dataclass(frozen=True)
class DrillEvent:
    t_s: float
    kind: EventKind
    label: str


@dataclass(frozen=True)
class Measure:
    name: str
    """e.g. "rto_s", "rpo_messages", "detect_s"."""
    value: float | None
    """None when it could not be measured (never happened within the drill): a gated measure then fails."""
    unit: str
    gate: float | None = None
    """The largest passing value; None = measured and reported, not gated."""
    detail: str = ""

    @property
    def passed(self) -> bool | None:
        if self.gate is None:
            return None
        return self.value is not None and self.value <= self.gate


@dataclass
class DrillPhase:
    name: str
    started_t_s: float
    ended_t_s: float
    ok: bool
    errors: list[str] = field(default_factory=list)
    """Every failed step of the phase with its error ("document any issues")."""

    @property
    def seconds(self) -> float:
        return self.ended_t_s - self.started_t_s


@dataclass
class DrillResult:
    drill: Literal["failover", "recovery"]
    fault: str
    """"kill", "partition" or "slow"."""
    run_id: str
    started_unix_s: float
    target: str
    synchronous_commit: bool
    timeline: list[DrillSample] = field(default_factory=list)
    events: list[DrillEvent] = field(default_factory=list)
    measures: list[Measure] = field(default_factory=list)
    phases: list[DrillPhase] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Problems that make the drill itself invalid (the stack did not start, no load ran)."""

    @property
    def passed(self) -> bool:
        gated = [m.passed for m in self.measures if m.passed is not None]
        return not self.errors and all(gated) and all(p.ok for p in self.phases)

    @property
    def exit_code(self) -> int:
        return 2 if self.errors else 0 if self.passed else 1

    def measure(self, name: str) -> Measure | None:
        return next((m for m in self.measures if m.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        for item, measure in zip(data["measures"], self.measures, strict=True):
            item["passed"] = measure.passed
        return data
