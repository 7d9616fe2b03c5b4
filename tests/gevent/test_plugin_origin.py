"""The harness plugin tallies the serving region of plain Locust HTTP users from the configured region header
(HARNESS_REGION_HEADER); the harness's own clients put it in each event's context."""

from __future__ import annotations

from types import SimpleNamespace

from harness.loadgen.plugin import _origin_from


def test_region_comes_from_the_configured_header() -> None:
    response = SimpleNamespace(headers={"x-served-from": "ap-northeast-1", "x-origin-region": "ap-southeast-1"})
    assert _origin_from(response, "x-served-from") == "ap-northeast-1"
    assert _origin_from(response, "x-origin-region") == "ap-southeast-1"
    assert _origin_from(SimpleNamespace(headers={}), "x-served-from") is None
    assert _origin_from(object(), "x-served-from") is None
