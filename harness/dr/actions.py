"""What failover and failback share: the context they act in, and a step recorder that journals every step.

DrContext   topology, the regions' admin API, the traffic switches, the operator's hooks, the journal
Steps       `with steps.step("promote") as step: ...` journals start, end, duration, changed and detail;
            an exception in the block is journaled as the step's failure and re-raised
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.dr.canary import Canary, CanaryFailed
from harness.dr.journal import Journal
from harness.dr.regions import RegionAdmin
from harness.dr.switch import TrafficSwitch
from harness.dr.topology import Region, Topology


class ActionRefused(Exception):
    """The action's preconditions do not hold (the message says which); nothing was changed."""


@dataclass
class DrContext:
    topology: Topology
    journal: Journal
    switches: Sequence[TrafficSwitch] = ()
    promote_cmd: str | None = None
    verify_timeout_s: float = 60.0
    """How long the after-action write check keeps retrying through the public entry point."""
    admin: RegionAdmin = field(init=False)

    def __post_init__(self) -> None:
        self.admin = RegionAdmin(self.topology)


@dataclass
class StepRecord:
    name: str
    started_unix_s: float
    ended_unix_s: float = 0.0
    ok: bool = False
    changed: bool = False
    detail: str = ""

    @property
    def seconds(self) -> float:
        return self.ended_unix_s - self.started_unix_s

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.name, "ok": self.ok, "changed": self.changed, "seconds": round(self.seconds, 3),
                "started_unix_s": round(self.started_unix_s, 3), "detail": self.detail}  # fmt: skip


@dataclass
class Outcome:
    action: str
    steps: list[StepRecord] = field(default_factory=list)
    dry_run: bool = False
    error: str | None = None
    """Why the action stopped; None when every step succeeded."""
    refused: bool = False
    """Stopped by a precondition before anything changed (exit 2); otherwise a failure is exit 1."""

    @property
    def changed(self) -> bool:
        return any(step.changed for step in self.steps)

    @property
    def ok(self) -> bool:
        return self.error is None and all(step.ok for step in self.steps)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 2 if self.refused else 1

    def step_named(self, name: str) -> StepRecord | None:
        return next((s for s in self.steps if s.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "ok": self.ok, "changed": self.changed, "dry_run": self.dry_run,
                "refused": self.refused, "error": self.error, "steps": [s.as_dict() for s in self.steps]}  # fmt: skip


class Steps:
    def __init__(self, ctx: DrContext, outcome: Outcome) -> None:
        self.ctx = ctx
        self.outcome = outcome

    @contextmanager
    def step(self, name: str) -> Iterator[StepRecord]:
        record = StepRecord(name, time.time())
        self.outcome.steps.append(record)
        try:
            yield record
            record.ok = True
        except Exception as exc:
            record.detail = record.detail or str(exc)
            raise
        finally:
            record.ended_unix_s = time.time()
            self.ctx.journal.write(self.outcome.action, dry_run=self.outcome.dry_run, **record.as_dict())


def run_action(ctx: DrContext, action: str, dry_run: bool, body: Callable[[Steps], None]) -> Outcome:
    """Run `body`'s steps; any failure ends the action, is journaled, and is kept in the outcome (never raised:
    the caller reports it and picks the exit code). Ctrl-C is not caught: the journal already holds every step."""
    outcome = Outcome(action, dry_run=dry_run)
    ctx.journal.write(action, step="start", dry_run=dry_run)
    try:
        body(Steps(ctx, outcome))
    except ActionRefused as exc:
        outcome.error, outcome.refused = str(exc), not outcome.changed
    except Exception as exc:  # an admin call, a hook, a switch: each failure is the action's result
        outcome.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    ctx.journal.write(action, step="end", ok=outcome.ok, changed=outcome.changed, dry_run=dry_run,
                      error=outcome.error)  # fmt: skip
    return outcome


def preflight_switches(ctx: DrContext, dry_run: bool) -> None:
    """Before the database moves: a switch that would refuse (credentials, a missing record) must refuse now."""
    for switch in ctx.switches:
        check = getattr(switch, "preflight", None)
        if check is not None:
            try:
                check(dry_run=dry_run)
            except Exception as exc:
                raise ActionRefused(f"traffic switch {switch.name} cannot act: {exc}") from None


def switch_traffic(steps: Steps, region: Region, dry_run: bool) -> None:
    for switch in steps.ctx.switches:
        with steps.step(f"switch_{switch.name}") as step:
            result = switch.switch_to(region.name, dry_run=dry_run)
            step.changed, step.detail = result.changed, result.detail


def verify_write(steps: Steps, dry_run: bool) -> None:
    """A canary write through the public entry point, retried until it succeeds or verify_timeout_s passes."""
    ctx = steps.ctx
    with steps.step("verify_write") as step:
        if dry_run:
            step.detail = f"would write a canary message through {ctx.topology.public_url}"
            return
        canary = Canary(ctx.topology)
        deadline = time.monotonic() + ctx.verify_timeout_s
        attempts, last_error = 0, ""
        try:
            while True:
                attempts += 1
                try:
                    canary.write()
                    step.detail = f"canary write through {ctx.topology.public_url} succeeded (attempt {attempts})"
                    return
                except (CanaryFailed, httpx.HTTPError) as exc:
                    last_error = str(exc) or type(exc).__name__
                    canary.token = None
                if time.monotonic() >= deadline:
                    raise ActionRefused(
                        f"no write succeeded through {ctx.topology.public_url} within {ctx.verify_timeout_s:.0f} s "
                        f"({attempts} attempts; last: {last_error})"
                    )
                time.sleep(0.25)
        finally:
            canary.close()
