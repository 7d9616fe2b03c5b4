"""Request legs from the HTTP transport: connect only on a new connection, wait up to the headers, body after them,
and the three add up to the request's time; the plugin's recording turns them into result.json's `legs`."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import gevent
import pytest
from gevent.server import StreamServer

from harness.clients.events import ListEvent, Reporter
from harness.clients.http import Transport
from harness.model.breakdown import parts_of, top_contributors
from harness.model.result import ResultBuilder, RunInfo

HEAD_DELAY_S = 0.05
"""The server waits this long before its headers (a lower bound of `wait`)."""
BODY_DELAY_S = 0.04
"""…and this long between the headers and the body (a lower bound of `body`)."""


@pytest.fixture
def slow_server() -> Iterator[tuple[int, list[int]]]:
    """Keep-alive HTTP/1.1: headers after HEAD_DELAY_S, the 5-byte body BODY_DELAY_S later; counts connections."""
    accepted: list[int] = []

    def serve(conn: socket.socket, _address: object) -> None:
        accepted.append(1)
        buffer = b""
        while data := conn.recv(65536):
            buffer += data
            while b"\r\n\r\n" in buffer:
                _head, buffer = buffer.split(b"\r\n\r\n", 1)
                gevent.sleep(HEAD_DELAY_S)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n")
                gevent.sleep(BODY_DELAY_S)
                conn.sendall(b"hello")

    server = StreamServer(("127.0.0.1", 0), serve)
    server.start()
    yield server.server_port, accepted
    server.stop(timeout=1)


def test_legs_split_a_call_and_only_a_new_connection_has_a_connect_leg(slow_server: tuple[int, list[int]]) -> None:
    port, accepted = slow_server
    events = ListEvent()
    transport = Transport(f"http://127.0.0.1:{port}", Reporter(request_event=events))
    first = transport.call("REST", "slow", "GET", "/", headers={})
    second = transport.call("REST", "slow", "GET", "/", headers={})
    transport.close()
    assert first.ok and second.ok and len(accepted) == 1
    assert first.connect_ms is not None and first.connect_ms > 0
    assert second.connect_ms is None  # kept alive: no connect leg
    for reply in (first, second):
        assert reply.wait_ms is not None and reply.body_ms is not None
        assert reply.wait_ms >= HEAD_DELAY_S * 1000
        assert reply.body_ms >= BODY_DELAY_S * 1000
        total = (reply.connect_ms or 0.0) + reply.wait_ms + reply.body_ms
        assert total == pytest.approx(reply.elapsed_ms, abs=1e-6)
    contexts = [e["context"] for e in events.fired]
    assert [c["connect_ms"] is None for c in contexts] == [False, True]
    assert contexts[1]["wait_ms"] == second.wait_ms and contexts[1]["body_ms"] == second.body_ms


def test_no_response_has_no_legs() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    events = ListEvent()
    transport = Transport(f"http://127.0.0.1:{port}", Reporter(request_event=events), connection_timeout_s=2)
    reply = transport.call("REST", "refused", "GET", "/", headers={})
    transport.close()
    assert reply.status == 0 and reply.wait_ms is None and reply.leg_context() == {}
    assert "wait_ms" not in events.fired[0]["context"]


def test_recorded_legs_reach_the_result_and_name_the_slow_leg(slow_server: tuple[int, list[int]]) -> None:
    """Events → ResultBuilder.record (as the plugin passes them) → worker payload → master → result: the tail
    above the p95 is this request, its dominant leg is `wait`, and the legs add up to the total."""
    port, _ = slow_server
    events = ListEvent()
    transport = Transport(f"http://127.0.0.1:{port}", Reporter(request_event=events))
    for _ in range(3):
        transport.call("REST", "slow", "GET", "/", headers={})
    transport.close()
    worker = ResultBuilder(window_s=60.0, worker="w1")
    for e in events.fired:
        ctx = e["context"]
        worker.record(
            e["name"], e["request_type"], "g", e["response_time"], e["exception"] is None, e["start_time"],
            connect_ms=ctx["connect_ms"], wait_ms=ctx["wait_ms"], body_ms=ctx["body_ms"],
        )  # fmt: skip
    for i in range(40):  # fast requests without legs (e.g. broadcasts) fill the bottom 95 %
        worker.record("broadcast", "RT", "g", 1.0, True, events.fired[0]["start_time"] + i * 1e-3)
    master = ResultBuilder(window_s=60.0)
    master.merge(worker.to_payload(reset=True))
    run = RunInfo(run_id="r", profile="p", started_s=0, ended_s=1, target="t", workers_expected=1, workers_seen=1)
    result = master.build(run)
    stat = next(s for w in result.windows for s in w.stats if s.name == "slow")
    assert stat.legs is not None and (stat.legs.new_connections, stat.legs.reused) == (1, 2)
    parts = parts_of(result.windows)
    tail = top_contributors(parts)
    top = tail.contributors[0]
    assert top.name == "slow" and top.share_pct == 100.0
    assert top.tail is not None and top.tail.dominant == "wait"
    legs_sum = top.tail.connect_ms + top.tail.wait_ms + top.tail.body_ms
    assert legs_sum == pytest.approx(top.tail.total_ms, rel=1e-9)
