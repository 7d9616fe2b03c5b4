"""Every message counted at every hop through the real reference stack (edge → Singapore region), and a loss made
on purpose at one hop attributed to that hop (docs/delivery.md).

One stack for the module; each test: a fresh run id, a fault set at run time (the region's and the edge's admin
routes, or the client recorder's), 12 load-test messages to a conversation with two listening recipients, then an
unmarked row: every frame that will arrive has arrived once the marker has (frames on one socket keep their order).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.clients.events import ListEvent, Reporter
from harness.clients.supabase import api
from harness.clients.supabase.sync import RealtimeSocket, SupabaseClient
from harness.model import hop_counts as hc
from harness.model.delivery import DeliveryTracker, Envelope
from harness.model.hops import leg_sketches
from harness.model.metrics import DELIVERY_LEGS
from harness.model.result import Result, ResultBuilder, RunInfo
from harness.model.target_config import TargetConfig
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts
from harness.run.hops import add_server_hops, fetch_server_hops
from harness.run.target import Target, reference_config
from harness.run.users import provision
from harness.scenarios.delivery_recorder import DeliveryRecorder

MESSAGES = 12
EVERY = 3
RECIPIENTS = 2
TIMEOUT_S = 10.0


@dataclass
class Rig:
    stack: ReferenceStack
    config: TargetConfig
    conversation: str
    sender: tuple[str, str]
    """(user id, access token)"""
    recipients: list[tuple[str, str]]

    @property
    def edge(self) -> str:
        return self.stack.endpoints.edge_url


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    data_dir: Path = tmp_path_factory.mktemp("hops-stack")
    config = StackConfig(ports=StackPorts.any(), pieces=("primary", "edge"), data_dir=data_dir, bcrypt_cost=4)
    with ReferenceStack(config) as stack:
        target = reference_config(stack.endpoints)
        credentials = provision(target, 3, 3, prefix="hoptest", run_id="hops")
        conversation = next(c for c in credentials.conversations if len(c.members) == 3)
        tokens = {}
        with SupabaseClient(stack.endpoints.edge_url, target.anon_key.reveal()) as client:
            for user in credentials.users:
                reply = client.sign_in(user.email, user.password)
                assert reply.status_code == 200, reply.text
                tokens[user.id] = reply.json()["access_token"]
        sender, *others = conversation.members
        yield Rig(stack, target, conversation.id, (sender, tokens[sender]), [(u, tokens[u]) for u in others])


def _set_fault(rig: Rig, hop: str | None) -> None:
    """The region's or the edge's drop fault (admin routes); the client's is the recorder's own."""
    key = rig.config.service_role_key
    assert key is not None
    headers = {"Authorization": f"Bearer {key.reveal()}"}
    region = f"{rig.stack.endpoints.primary_url}/_admin/hops"
    edge = f"{rig.edge}/_edge/admin/hops"
    for url, hops in ((region, (hc.FEED, hc.FANOUT, hc.WRITTEN)), (edge, (hc.RELAYED,))):
        fault = f"{hop}:{EVERY}" if hop in hops else "off"
        reply = httpx.post(url, json={"fault": fault}, headers=headers, timeout=5)
        assert reply.status_code == 200, reply.text


def _exchange(rig: Rig, hop: str | None) -> tuple[Result, list[dict[str, Any]]]:
    """Send the messages, read them at both recipients, and build the result the orchestrator would."""
    run_id = f"hoptest-{secrets.token_hex(3)}"
    _set_fault(rig, hop)
    anon = rig.config.anon_key.reveal()
    sender_id, sender_token = rig.sender
    membership = {rig.conversation: (sender_id, *(u for u, _ in rig.recipients))}
    fault = hc.Fault(hc.RECEIVED, EVERY) if hop == hc.RECEIVED else None
    recorder = DeliveryRecorder(DeliveryTracker(run_id, membership), TIMEOUT_S, window_s=5.0, fault=fault)
    events = ListEvent()
    binding = api.postgres_binding("messages", "INSERT", f"conversation_id={api.eq(rig.conversation)}")
    topic = f"realtime:conversation:{rig.conversation}"
    sockets: list[tuple[str, RealtimeSocket]] = []
    try:
        with SupabaseClient(rig.edge, anon) as client:
            for user_id, token in rig.recipients:
                sock = client.realtime(TIMEOUT_S)
                sockets.append((user_id, sock))
                joined = sock.join(topic, api.join_config([binding]), token)
                assert joined is not None and joined["payload"]["status"] == "ok", joined
                recorder.subscribe(user_id, Reporter(request_event=events))
            for seq in range(1, MESSAGES + 1):
                envelope = Envelope(run_id, sender_id, seq, time.time(), rig.conversation)
                recorder.sending(envelope)
                reply = client.insert("messages", envelope.message_row(), returning=False, token=sender_token)
                assert reply.status_code == 201, reply.text
                recorder.sent(envelope)
            marker = f"marker {run_id}"
            row = {"conversation_id": rig.conversation, "sender_id": sender_id, "content": marker,
                   "client_msg_id": marker}  # fmt: skip
            assert client.insert("messages", row, returning=False, token=sender_token).status_code == 201
            for user_id, sock in sockets:
                for _ in range(MESSAGES + 1):
                    frame = sock.next_frame(lambda f: f.get("event") == "postgres_changes")
                    assert frame is not None, "the marker never came"
                    data = frame["payload"]["data"]
                    if data["record"]["content"] == marker:
                        break
                    recorder.received(user_id, data["record"], stamp=data.get("_hops"),
                                      commit_timestamp=data.get("commit_timestamp"))  # fmt: skip
    finally:
        for _, sock in sockets:
            sock.close()
        _set_fault(rig, None)
    recorder.expire(timeout_s=0)
    builder = ResultBuilder(window_s=5.0)
    builder.record_hops(*recorder.drain_hops())
    now = time.time()
    run = RunInfo(run_id=run_id, profile="test", started_s=now, ended_s=now, target=rig.edge,
                  workers_expected=1, workers_seen=1)  # fmt: skip
    target = Target(url=rig.edge, config=rig.config, reference=True)
    result = add_server_hops(builder.build(run), fetch_server_hops(target, run_id))
    return result, events.fired


def test_every_hop_counts_every_message_and_the_legs_add_up(rig: Rig) -> None:
    result, fired = _exchange(rig, None)
    hops = result.hops
    assert hops is not None
    assert hops.server_pieces == ["edge", "region ap-southeast-1"]
    deliveries = MESSAGES * RECIPIENTS
    totals: dict[str, int] = {}
    for window in hops.windows:
        for piece, counts in [("client", window.client), *window.server.items()]:
            for hop, n in counts.items():
                totals[f"{piece}.{hop}"] = totals.get(f"{piece}.{hop}", 0) + n
    assert totals["client.sent"] == totals["client.acked"] == MESSAGES
    assert totals["region ap-southeast-1.feed"] == MESSAGES
    for counted in ("client.expected", "region ap-southeast-1.fanout", "region ap-southeast-1.written",
                    "edge.relayed", "client.received", "client.delivered"):  # fmt: skip
        assert totals[counted] == deliveries, counted
    verdict = hops.attribution[0]
    assert verdict.lost == 0 and verdict.first_hop is None and verdict.losses == []
    # The legs: every delivery split into commit → feed → fan-out → edge → client, summing to its latency.
    legs = leg_sketches(hops)
    assert set(legs) == set(DELIVERY_LEGS)
    assert all(sketch.count == deliveries for sketch in legs.values())
    latencies = [e["response_time"] for e in fired if e["name"] == "message.delivery" and e["exception"] is None]
    assert len(latencies) == deliveries
    total_mean = sum(latencies) / len(latencies)
    assert sum(s.sum_ms for s in legs.values()) / deliveries == pytest.approx(total_mean, rel=1e-6, abs=1e-6)
    for sketch in legs.values():  # no leg is longer than the slowest delivery (within the sketch's 1 %)
        assert (sketch.quantile(1.0) or 0.0) <= max(latencies) * 1.01 + 1e-6


@pytest.mark.parametrize("hop", [hc.FEED, hc.FANOUT, hc.WRITTEN, hc.RELAYED, hc.RECEIVED])
def test_a_loss_made_at_one_hop_is_attributed_to_it(rig: Rig, hop: str) -> None:
    result, _ = _exchange(rig, hop)
    assert result.hops is not None
    verdict = result.hops.attribution[0]
    dropped = MESSAGES // EVERY if hop == hc.FEED else MESSAGES * RECIPIENTS // EVERY
    lost = dropped * RECIPIENTS if hop == hc.FEED else dropped
    assert verdict.lost == lost, verdict.text
    assert verdict.first_hop == hop, verdict.text
    assert verdict.losses[0].count == dropped, verdict.text
    if hop == hc.FEED:  # the messages the feed never emitted miss the fan-out too, and nothing after it
        assert [(x.hop, x.count) for x in verdict.losses] == [(hc.FEED, dropped), (hc.FANOUT, lost)]
    else:
        assert [x.hop for x in verdict.losses] == [hop], verdict.text
    assert f"{lost:,} of {MESSAGES * RECIPIENTS:,} deliveries" in verdict.text
