"""The DR monitor's hysteresis on the real reference stack: one failed round never fails over, N in a row do.

The probe results are scripted (the one test double here: a fault that lasts exactly one probe round cannot be
timed reliably against real processes); the failover the monitor then runs is real (pg_promote, the edge)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from harness.dr.actions import Outcome
from harness.dr.monitor import MonitorSettings, monitor
from harness.dr.probe import Check, ProbeRound
from harness.dr.topology import Region
from harness.refstack.stack import ReferenceStack
from tests.dr.conftest import context_of


class ScriptedProber:
    """Answers the rounds given (True = healthy), then healthy; records which region each round probed."""

    def __init__(self, script: list[bool]) -> None:
        self.script = list(script)
        self.probed: list[str] = []
        self.canary = type("Canary", (), {"token": None})()

    def probe(self, primary: Region) -> ProbeRound:
        self.probed.append(primary.name)
        ok = self.script.pop(0) if self.script else True
        return ProbeRound(primary.name, time.time(), [Check("primary_health", ok, 1.0, None if ok else "scripted")])

    def close(self) -> None:
        pass


def _role(url: str) -> str:
    return str(httpx.get(f"{url}/_replication/status", timeout=5).json()["role"])


def test_isolated_failed_rounds_never_fail_over(stack: ReferenceStack, tmp_path: Path) -> None:
    ctx = context_of(stack, tmp_path / "state")
    prober = ScriptedProber([False, True, False, False, True, False, True])
    settings = MonitorSettings(interval_s=0.01, failures=3, max_rounds=8)
    assert monitor(ctx, settings, prober=prober) == 0  # type: ignore[arg-type]
    assert _role(stack.endpoints.replica_url) == "replica"
    assert not [e for e in ctx.journal.last_actions(50) if e["event"] == "failover"]


def test_n_failed_rounds_in_a_row_fail_over_once_then_watch_the_new_primary(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    ctx = context_of(stack, tmp_path / "state")
    prober = ScriptedProber([True, False, False, False, False, False])
    outcomes = []
    settings = MonitorSettings(interval_s=0.01, failures=3, max_rounds=8)
    assert monitor(ctx, settings, prober=prober, on_action=outcomes.append) == 0  # type: ignore[arg-type]
    assert len(outcomes) == 1 and outcomes[0].ok and outcomes[0].changed
    assert prober.probed[:4] == ["ap-southeast-1"] * 4  # the 4th round is the 3rd failure in a row
    assert set(prober.probed[4:]) == {"ap-northeast-1"}  # then the new primary is watched
    assert _role(stack.endpoints.replica_url) == "primary"
    decisions = [e for e in ctx.journal.last_actions(50) if e["event"] == "monitor" and e.get("step") == "decision"]
    assert len(decisions) == 1 and decisions[0]["consecutive_failures"] == 3
    probes = [line for line in ctx.journal.path.read_text().splitlines() if '"probe"' in line]
    assert probes == []  # probe lines go to stdout only; the journal file keeps actions


def test_a_failed_failover_is_tried_again_after_n_more_failed_rounds(stack: ReferenceStack, tmp_path: Path) -> None:
    ctx = context_of(stack, tmp_path / "state", promote_cmd="exit 3")  # the promotion always fails
    prober = ScriptedProber([False] * 7)
    outcomes: list[Outcome] = []
    settings = MonitorSettings(interval_s=0.01, failures=3, max_rounds=7)
    assert monitor(ctx, settings, prober=prober, on_action=outcomes.append) == 1  # type: ignore[arg-type]
    assert len(outcomes) == 2 and not any(o.ok for o in outcomes)  # rounds 3 and 6, never round 4 or 5
    assert "exited 3" in (outcomes[0].error or "")
    assert set(prober.probed) == {"ap-southeast-1"}  # it never moved to a primary it could not promote
    assert _role(stack.endpoints.replica_url) == "replica"
