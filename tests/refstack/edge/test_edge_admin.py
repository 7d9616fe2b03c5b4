"""The edge's admin API (the DR traffic switch): auth, bad input, switching to Japan and back, health underneath."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

SINGAPORE = "ap-southeast-1"
JAPAN = "ap-northeast-1"
TOKEN = "edge-admin-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PATH = "/_edge/admin/primary"
INTERVAL_S = 0.1
FAILURES = 3
RECOVERIES = 2


def status(edge: Any) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{edge.url}/_edge/status", timeout=5).json()
    return body


def region_for(edge: Any, country: str | None) -> str:
    headers = {} if country is None else {"CloudFront-Viewer-Country": country}
    resp = httpx.get(f"{edge.url}/rest/v1/ping", headers=headers, timeout=5)
    assert resp.status_code == 200
    return str(resp.headers["x-origin-region"])


def switch(edge: Any, region: str, headers: dict[str, str] = AUTH) -> httpx.Response:
    return httpx.post(f"{edge.url}{PATH}", json={"region": region}, headers=headers, timeout=5)


def test_the_admin_api_is_off_without_a_token(start_edge: Callable[..., Any]) -> None:
    edge = start_edge()
    for response in (switch(edge, JAPAN), httpx.get(f"{edge.url}{PATH}", headers=AUTH, timeout=5)):
        assert response.status_code == 404
        assert "admin token" in response.json()["message"]
    assert region_for(edge, None) == SINGAPORE


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer"}, {"Authorization": "Bearer wrong"}],
    ids=["none", "basic", "empty", "wrong"],
)
def test_a_missing_or_wrong_token_is_refused(start_edge: Callable[..., Any], headers: dict[str, str]) -> None:
    edge = start_edge(admin_token=TOKEN)
    for response in (switch(edge, JAPAN, headers), httpx.get(f"{edge.url}{PATH}", headers=headers, timeout=5)):
        assert response.status_code == 401
        assert response.json()["message"]
        assert TOKEN not in response.text
    assert status(edge)["primary_region"] == SINGAPORE
    assert region_for(edge, None) == SINGAPORE


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"region": 5}', b"{}", b'{"region": "us-east-1"}', b'{"region": "AP-NORTHEAST-1"}'],
)
def test_a_bad_body_or_unknown_region_is_a_400_naming_the_valid_regions(
    start_edge: Callable[..., Any], body: bytes
) -> None:
    edge = start_edge(admin_token=TOKEN)
    response = httpx.post(f"{edge.url}{PATH}", content=body, headers=AUTH, timeout=5)
    assert response.status_code == 400
    assert SINGAPORE in response.json()["message"] and JAPAN in response.json()["message"]
    assert status(edge)["primary_region"] == SINGAPORE


def test_switching_to_japan_moves_every_viewer_and_switching_back_restores_home(
    start_edge: Callable[..., Any],
) -> None:
    edge = start_edge(admin_token=TOKEN)
    before = status(edge)
    assert (before["primary_region"], before["home_primary_region"], before["switched_at_unix_s"]) == (
        SINGAPORE,
        SINGAPORE,
        None,
    )

    first = switch(edge, JAPAN)
    assert first.status_code == 200
    assert first.json()["primary_region"] == JAPAN and first.json()["changed"] is True
    switched_at = first.json()["switched_at_unix_s"]
    assert isinstance(switched_at, float)
    for country in (None, "CN", "SG", "HK", "US"):
        assert region_for(edge, country) == JAPAN, country
    body = status(edge)
    assert (body["primary_region"], body["home_primary_region"], body["switched_at_unix_s"]) == (
        JAPAN,
        SINGAPORE,
        switched_at,
    )
    assert {c: d["region"] for c, d in body["decisions"].items()} == {"CN": JAPAN, "HK": JAPAN, "SG": JAPAN}

    again = switch(edge, JAPAN)  # idempotent: nothing changes, not even the time
    assert again.json() == {"primary_region": JAPAN, "changed": False, "switched_at_unix_s": switched_at}
    current = httpx.get(f"{edge.url}{PATH}", headers=AUTH, timeout=5)
    assert current.status_code == 200 and current.json()["primary_region"] == JAPAN

    back = switch(edge, SINGAPORE)
    assert back.json()["primary_region"] == SINGAPORE and back.json()["changed"] is True
    assert {c: region_for(edge, c) for c in (None, "CN", "SG", "HK")} == {
        None: SINGAPORE,
        "CN": JAPAN,
        "SG": SINGAPORE,
        "HK": SINGAPORE,
    }
    assert status(edge)["primary_region"] == SINGAPORE


def test_health_failover_never_returns_to_singapore_while_the_chosen_japan_is_healthy(
    start_edge: Callable[..., Any], origins: dict[str, Any], poll: Callable[..., float]
) -> None:
    edge = start_edge(
        admin_token=TOKEN,
        health_interval_s=INTERVAL_S,
        failure_threshold=FAILURES,
        recovery_threshold=RECOVERIES,
    )
    assert switch(edge, JAPAN).status_code == 200
    # Several probe rounds with both origins healthy: Singapore is healthy, yet nobody goes back there.
    poll(lambda: all(o["checks"] >= 5 for o in status(edge)["origins"].values()), what="five probe rounds")
    assert all(o["healthy"] for o in status(edge)["origins"].values())
    assert {c: region_for(edge, c) for c in (None, "CN", "SG")} == {None: JAPAN, "CN": JAPAN, "SG": JAPAN}
    assert all(d["reason"] == "preferred" for d in status(edge)["decisions"].values())

    # The chosen primary fails: health moves everyone to Singapore, and back to Japan once it recovers.
    origins[JAPAN].stop()
    poll(lambda: status(edge)["decisions"]["SG"]["region"] == SINGAPORE, what="failover to Singapore")
    assert status(edge)["decisions"]["CN"] == {
        "region": SINGAPORE,
        "reason": "failover",
        "preferred": JAPAN,
        "country": "CN",
    }
    assert region_for(edge, None) == SINGAPORE
    origins[JAPAN].restart()
    poll(lambda: status(edge)["decisions"]["SG"]["region"] == JAPAN, what="back to Japan")
    assert {c: region_for(edge, c) for c in (None, "CN", "SG")} == {None: JAPAN, "CN": JAPAN, "SG": JAPAN}
