"""harness dr failover / failback / status on the real reference stack (PostgreSQL primary and streaming replica,
region servers, the edge), as the issue asks: failover idempotent, refused when the replica is gone, failback
restores Singapore as primary with nothing lost, dry runs change nothing, two actions never run at once."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from harness.dr.actions import DrContext
from harness.dr.canary import Canary
from harness.dr.failback import failback
from harness.dr.failover import LagLimits, failover
from harness.dr.hooks import CommandSwitch, HookFailed
from harness.dr.journal import Journal
from harness.dr.lock import DrLock
from harness.dr.status import status
from harness.dr.topology import Region
from harness.errors import ConfigError
from harness.refstack.stack import ReferenceStack
from tests.dr.conftest import context_of

REGION_HEADER = "x-origin-region"


def _role(url: str) -> str:
    return str(httpx.get(f"{url}/_replication/status", timeout=5).json()["role"])


def test_failover_promotes_japan_moves_the_edge_and_a_second_run_changes_nothing(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    ctx = context_of(stack, tmp_path / "state")
    first = failover(ctx)
    assert first.ok and first.changed, first.as_dict()
    assert [s.name for s in first.steps] == [
        "check_standby",
        "promote",
        "switch_edge",
        "verify_write",
        "fence_old_primary",
    ]
    assert _role(stack.endpoints.replica_url) == "primary"
    assert _role(stack.endpoints.primary_url) == "replica"  # fenced: never two primaries
    # Through the edge, a global viewer (no country) now reaches Japan, the new primary.
    served = httpx.get(f"{stack.endpoints.edge_url}/health", timeout=5)
    assert served.headers[REGION_HEADER] == "ap-northeast-1"

    second = failover(ctx)
    assert second.ok and not second.changed, second.as_dict()
    assert second.step_named("promote").detail.endswith("already primary")  # type: ignore[union-attr]
    actions = [e for e in ctx.journal.last_actions(50) if e["event"] == "failover" and "step" in e]
    assert {e["step"] for e in actions} >= {"check_standby", "promote", "switch_edge", "verify_write", "end"}


def test_failover_is_refused_when_the_replica_is_behind_or_gone(stack: ReferenceStack, tmp_path: Path) -> None:
    ctx = context_of(stack, tmp_path / "state")
    behind = failover(ctx, limits=LagLimits(max_bytes=-1))  # any lag is too much: refused, unless --force
    assert behind.refused and "too far behind" in (behind.error or "") and not behind.changed
    assert _role(stack.endpoints.replica_url) == "replica"
    forced = failover(ctx, limits=LagLimits(max_bytes=-1), force=True, dry_run=True)
    assert forced.ok and "--force" in forced.steps[0].detail

    stack.processes.pop("replica").stop()
    outcome = failover(ctx)
    assert outcome.refused and outcome.exit_code == 2 and not outcome.changed
    assert "unreachable" in (outcome.error or "")
    assert [s.name for s in outcome.steps] == ["check_standby"]
    assert _role(stack.endpoints.primary_url) == "primary"  # nothing changed


def test_dry_run_changes_nothing(stack: ReferenceStack, tmp_path: Path) -> None:
    ctx = context_of(stack, tmp_path / "state")
    outcome = failover(ctx, dry_run=True)
    assert outcome.ok and not outcome.changed
    assert "would promote" in outcome.step_named("promote").detail  # type: ignore[union-attr]
    assert _role(stack.endpoints.replica_url) == "replica"
    assert ctx.switches[0].active_region() == "ap-southeast-1"


def test_status_names_the_primary_and_the_last_actions(stack: ReferenceStack, tmp_path: Path) -> None:
    ctx = context_of(stack, tmp_path / "state")
    before = status(ctx)
    assert before["primary"] == "ap-southeast-1" and not before["split_brain"]
    assert before["regions"]["ap-northeast-1"]["role"] == "replica"
    assert before["switches"] == {"edge": "ap-southeast-1"}
    failover(ctx)
    after = status(ctx)
    assert after["switches"] == {"edge": "ap-northeast-1"}
    assert after["primary"] == "ap-northeast-1" and not after["split_brain"]
    assert after["regions"]["ap-northeast-1"]["role"] == "primary"
    assert any(a.get("step") == "promote" and a.get("changed") for a in after["last_actions"])


def test_two_dr_processes_never_act_at_once(tmp_path: Path) -> None:
    with DrLock(tmp_path, "action"), pytest.raises(ConfigError, match="another harness dr process"):
        DrLock(tmp_path, "action").__enter__()
    with DrLock(tmp_path, "action"):  # released on exit
        pass


def _writer(ctx: DrContext, acked: list[str], stop: threading.Event) -> None:
    """Sequence-numbered messages through the edge until stopped; keeps the client ids of 201 answers."""
    canary = Canary(ctx.topology, email=f"dr-writer-{uuid.uuid4().hex[:6]}@harness.invalid")
    deadline = time.monotonic() + 120
    try:
        seq = 0
        while not stop.is_set() and time.monotonic() < deadline:
            seq += 1
            try:
                canary.ensure()
                client_id = f"w-{seq}"
                resp = canary.client.insert(
                    "messages",
                    {"conversation_id": canary.conversation_id, "sender_id": canary.user_id,
                     "client_msg_id": client_id, "content": str(seq)},
                    returning=False, token=canary.token,
                )  # fmt: skip
                if resp.status_code == 201:
                    acked.append(client_id)
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    finally:
        canary.close()


def test_failback_restores_singapore_as_primary_with_no_acknowledged_write_lost(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    ctx = context_of(stack, tmp_path / "state")
    assert failover(ctx).ok
    acked: list[str] = []
    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(ctx, acked, stop))
    writer.start()
    try:
        outcome = failback(ctx, stable_for_s=1.0)
        time.sleep(0.5)  # writes keep going after the switch back
    finally:
        stop.set()
        writer.join(30)
    assert outcome.ok and outcome.changed, outcome.as_dict()
    assert [s.name for s in outcome.steps] == [
        "check_roles", "check_home_stable", "resync", "caught_up", "switchover", "switch_edge", "verify_write"
    ]  # fmt: skip
    assert _role(stack.endpoints.primary_url) == "primary"
    assert _role(stack.endpoints.replica_url) == "replica"
    assert ctx.switches[0].active_region() == "ap-southeast-1"
    assert len(acked) > 10
    # Every acknowledged message is on Singapore, the primary again.
    service = {"apikey": ctx.topology.service_key.reveal(),
               "Authorization": f"Bearer {ctx.topology.service_key.reveal()}"}  # fmt: skip
    rows = httpx.get(f"{stack.endpoints.primary_url}/rest/v1/messages?select=client_msg_id&client_msg_id=like.w-*",
                     headers=service, timeout=10).json()  # fmt: skip
    stored = {row["client_msg_id"] for row in rows}
    assert set(acked) <= stored, f"lost: {sorted(set(acked) - stored)[:10]}"
    assert failback(ctx, stable_for_s=1.0).changed is False  # idempotent


def test_switch_cmd_runs_once_per_region_and_a_failing_command_fails(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    regions = {"ap-northeast-1": Region("ap-northeast-1", "http://127.0.0.1:9")}
    journal = Journal(tmp_path / "state", out=None)
    switch = CommandSwitch(f'echo "$HARNESS_DR_REGION $HARNESS_DR_REGION_URL" >> {calls}', regions, journal)
    assert switch.switch_to("ap-northeast-1").changed
    assert not switch.switch_to("ap-northeast-1").changed  # idempotent through the journal's state
    assert calls.read_text() == "ap-northeast-1 http://127.0.0.1:9\n"
    assert switch.active_region() == "ap-northeast-1"
    with pytest.raises(HookFailed, match="exited 3: nope"):
        CommandSwitch("echo nope; exit 3", regions, Journal(tmp_path / "other", out=None)).switch_to("ap-northeast-1")
