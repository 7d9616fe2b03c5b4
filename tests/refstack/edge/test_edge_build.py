"""The edge's build switch (the deployment gate's stand-in for a release): failing answers 503, slow holds each
request, good restores it; the edge's own API keeps answering; auth and bad input as the other admin routes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

TOKEN = "edge-build-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PATH = "/_edge/admin/build"


def _set(edge: Any, body: object, headers: dict[str, str] = AUTH) -> httpx.Response:
    return httpx.post(f"{edge.url}{PATH}", json=body, headers=headers, timeout=10)


def test_failing_then_slow_then_good(start_edge: Callable[..., Any]) -> None:
    edge = start_edge(admin_token=TOKEN)
    assert httpx.get(f"{edge.url}{PATH}", headers=AUTH, timeout=5).json() == {"build": "good", "delay_ms": 2500}
    assert _set(edge, {"build": "failing"}).status_code == 200
    assert httpx.get(f"{edge.url}/rest/v1/ping", timeout=5).status_code == 503
    assert httpx.get(f"{edge.url}/", timeout=5).status_code == 503  # the web shell too
    assert httpx.get(f"{edge.url}/_edge/status", timeout=5).status_code == 200  # the edge's API still answers
    assert _set(edge, {"build": "slow", "delay_ms": 300}).json() == {"build": "slow", "delay_ms": 300}
    started = time.monotonic()
    assert httpx.get(f"{edge.url}/rest/v1/ping", timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.3
    assert _set(edge, {"build": "good"}).status_code == 200
    assert httpx.get(f"{edge.url}/rest/v1/ping", timeout=5).status_code == 200


@pytest.mark.parametrize(
    "body", [{"build": "broken"}, {"build": "slow", "delay_ms": -1}, {"build": "slow", "delay_ms": True}, []]
)
def test_bad_input_is_a_400_and_changes_nothing(start_edge: Callable[..., Any], body: object) -> None:
    edge = start_edge(admin_token=TOKEN)
    response = _set(edge, body)
    assert response.status_code == 400 and "good, slow, failing" in response.json()["message"]
    assert httpx.get(f"{edge.url}{PATH}", headers=AUTH, timeout=5).json()["build"] == "good"


def test_the_switch_needs_the_admin_token(start_edge: Callable[..., Any]) -> None:
    assert _set(start_edge(), {"build": "failing"}).status_code == 404  # no token: the admin API is off
    edge = start_edge(admin_token=TOKEN)
    assert _set(edge, {"build": "failing"}, {"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{edge.url}/rest/v1/ping", timeout=5).status_code == 200


def test_target_build_refuses_a_non_loopback_edge() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "harness", "target", "build", "failing", "--edge",
                           "http://example.com"], capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2 and "loopback only" in done.stderr
