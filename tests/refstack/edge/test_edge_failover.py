"""Health checks and failover: stop Singapore, everyone moves to Japan; restart it, they move back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import httpx
import websocket

from harness.refstack.edge.health import HealthChecker, OriginHealth

SINGAPORE = "ap-southeast-1"
JAPAN = "ap-northeast-1"
INTERVAL_S = 0.1
FAILURES = 3
RECOVERIES = 2
SLACK_S = 3.0
"""Generous on purpose: a loaded CI machine may delay probe rounds; the test checks behaviour, not speed."""


def status(edge: Any) -> dict[str, Any]:
    resp = httpx.get(f"{edge.url}/_edge/status", timeout=5)
    assert resp.status_code == 200
    body: dict[str, Any] = resp.json()
    return body


def region_for(edge: Any, country: str) -> str:
    resp = httpx.get(f"{edge.url}/rest/v1/ping", headers={"CloudFront-Viewer-Country": country}, timeout=5)
    return str(resp.headers["x-origin-region"])


def test_status_reports_origins_and_decisions(start_edge: Callable[..., Any], poll: Callable[..., float]) -> None:
    edge = start_edge(health_interval_s=INTERVAL_S, failure_threshold=FAILURES, recovery_threshold=RECOVERIES)
    poll(lambda: all(o["checks"] >= 2 for o in status(edge)["origins"].values()), what="two probe rounds")
    body = status(edge)
    assert body["edge_location"] == "SIN-LOCAL"
    assert body["health_check"] == {
        "path": "/health",
        "interval_s": INTERVAL_S,
        "failure_threshold": FAILURES,
        "recovery_threshold": RECOVERIES,
    }
    for origin in body["origins"].values():
        assert origin["healthy"] is True
        assert origin["consecutive_failures"] == 0
        assert origin["consecutive_successes"] >= 2
    assert body["decisions"]["CN"]["region"] == JAPAN
    assert body["decisions"]["SG"] == {
        "region": SINGAPORE,
        "reason": "preferred",
        "preferred": SINGAPORE,
        "country": "SG",
    }


def test_singapore_down_moves_everyone_to_japan_and_back(
    start_edge: Callable[..., Any], origins: dict[str, Any], poll: Callable[..., float]
) -> None:
    edge = start_edge(health_interval_s=INTERVAL_S, failure_threshold=FAILURES, recovery_threshold=RECOVERIES)
    assert region_for(edge, "SG") == SINGAPORE

    origins[SINGAPORE].stop()
    window_s = INTERVAL_S * FAILURES + SLACK_S
    poll(lambda: status(edge)["decisions"]["SG"]["region"] == JAPAN, deadline_s=window_s, what="failover to Japan")
    body = status(edge)
    assert body["origins"][SINGAPORE]["healthy"] is False
    assert body["origins"][SINGAPORE]["consecutive_failures"] >= FAILURES
    assert body["origins"][SINGAPORE]["last_error"]
    assert body["decisions"]["SG"]["reason"] == "failover"
    assert region_for(edge, "SG") == JAPAN
    assert region_for(edge, "CN") == JAPAN
    ws = websocket.create_connection(
        "ws" + edge.url.removeprefix("http") + "/realtime/v1/websocket",
        header=["CloudFront-Viewer-Country: SG"],
        timeout=10,
    )
    assert (ws.getheaders() or {})["x-origin-region"] == JAPAN
    ws.close()

    origins[SINGAPORE].restart()
    window_s = INTERVAL_S * RECOVERIES + SLACK_S
    poll(lambda: status(edge)["decisions"]["SG"]["region"] == SINGAPORE, deadline_s=window_s, what="failback")
    assert region_for(edge, "SG") == SINGAPORE
    assert status(edge)["origins"][SINGAPORE]["transitions"] == 2


def test_japan_down_sends_china_to_singapore(
    start_edge: Callable[..., Any], origins: dict[str, Any], poll: Callable[..., float]
) -> None:
    edge = start_edge(health_interval_s=INTERVAL_S, failure_threshold=FAILURES, recovery_threshold=RECOVERIES)
    origins[JAPAN].stop()
    poll(
        lambda: status(edge)["decisions"]["CN"]["region"] == SINGAPORE,
        deadline_s=INTERVAL_S * FAILURES + SLACK_S,
        what="China to Singapore",
    )
    assert region_for(edge, "CN") == SINGAPORE


def test_thresholds_need_consecutive_results() -> None:
    h = OriginHealth()
    flips = [h.record(ok, None if ok else "refused", 3, 2) for ok in (False, False, True, False, False, False)]
    assert flips == [False, False, False, False, False, True]  # a success in between resets the count
    assert h.healthy is False
    assert [h.record(ok, None, 3, 2) for ok in (True, False, True, True)] == [False, False, False, True]
    assert h.healthy is True
    assert h.transitions == 2


def test_a_health_flip_is_said_in_the_log(caplog: Any) -> None:
    """A flip moves traffic between regions, so the edge's log names it (an overloaded /health alone can do it)."""
    # Port 9 on loopback: nothing listens, every probe fails at once.
    checker = HealthChecker(origins={"ap-southeast-1": "http://127.0.0.1:9"}, failure_threshold=2, timeout_s=1.0)

    async def probes() -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(3):
                await checker.probe(session, "ap-southeast-1")

    with caplog.at_level("WARNING", logger="harness.refstack.edge.health"):
        asyncio.run(probes())
    flips = [r.getMessage() for r in caplog.records if "unhealthy" in r.getMessage()]
    assert len(flips) == 1 and "ap-southeast-1 unhealthy after 2 failed probes" in flips[0]
    assert "traffic moves to the other region" in flips[0]
