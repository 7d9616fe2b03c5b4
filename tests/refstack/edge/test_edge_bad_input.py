"""Bad input to the edge's own routes answers 4xx in the admin API's `{"message"}` shape, never a 500 (issue 14
items 4 and 9): bodies with NaN, Infinity, lone surrogates or 100,000-deep nesting, and bearer tokens whose bytes
are not UTF-8. Proxied requests with such bytes in headers or the query pass through to the origin unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from harness.procs.serving import BackgroundServer
from harness.refstack.edge.server import build_app
from tests.refstack import rawhttp
from tests.refstack.edge.conftest import JAPAN, SINGAPORE, OriginProbe, origin_app

TOKEN = "edge-admin-test-token"
AUTH = [(b"Authorization", b"Bearer " + TOKEN.encode())]
ADMIN_PATHS = [b"/_edge/admin/primary", b"/_edge/admin/hops"]
DEPTH = 100_000


@pytest.fixture(scope="module")
def edge() -> Iterator[BackgroundServer]:
    origins = [BackgroundServer(origin_app(region, OriginProbe())).start() for region in (SINGAPORE, JAPAN)]
    urls = {SINGAPORE: origins[0].url, JAPAN: origins[1].url}
    server = BackgroundServer(lambda: build_app(origins=urls, admin_token=TOKEN, health_interval_s=0.2)).start()
    try:
        yield server
    finally:
        server.stop()
        for origin in origins:
            origin.stop()


BAD_BODIES = {
    "NaN": (b'{"region": NaN, "fault": NaN}', "finite"),
    "Infinity": (b'{"region": Infinity, "fault": Infinity}', "finite"),
    "-Infinity": (b'{"region": -Infinity, "fault": -Infinity}', "finite"),
    "1e400": (b'{"region": 1e400, "fault": 1e400}', "finite"),
    "lone surrogate": (b'{"region": "\\ud800", "fault": "\\ud800"}', "surrogate"),
    "deep arrays": (b"[" * DEPTH + b"]" * DEPTH, "deeper"),
    "deep objects": (b'{"a":' * DEPTH + b"1" + b"}" * DEPTH, "deeper"),
    "not UTF-8": (b'{"region": "\xff"}', "UTF-8"),
}


@pytest.mark.parametrize("path", ADMIN_PATHS)
@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_admin_bodies_that_are_not_strict_json_get_a_400_naming_the_problem(
    edge: BackgroundServer, path: bytes, name: str
) -> None:
    body, problem = BAD_BODIES[name]
    response = rawhttp.request(edge.port, b"POST", path, [*AUTH, (b"Content-Type", b"application/json")], body)
    assert response.status == 400, (name, response)
    message = response.json()["message"]
    assert "JSON" in message and problem in message, message


@pytest.mark.parametrize("path", ADMIN_PATHS)
@pytest.mark.parametrize("token", [b"\xff", b"\xed\xa0\x80", b"\xc3", TOKEN.encode() + b"\x80"])
def test_an_admin_token_that_is_not_utf8_is_a_401(edge: BackgroundServer, path: bytes, token: bytes) -> None:
    response = rawhttp.request(edge.port, b"GET", path, [(b"Authorization", b"Bearer " + token)])
    assert response.status == 401, response
    assert response.json() == {"message": "invalid admin token"}


def test_a_good_switch_still_works_after_bad_input(edge: BackgroundServer) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for region in (JAPAN, SINGAPORE):
        switched = httpx.post(f"{edge.url}/_edge/admin/primary", json={"region": region}, headers=headers, timeout=5)
        assert switched.status_code == 200 and switched.json()["primary_region"] == region, switched.text


def test_proxied_query_escapes_and_utf8_headers_reach_the_origin_unchanged(edge: BackgroundServer) -> None:
    target = b"/rest/v1/echo?q=%ff%ed%a0%80&r=%"
    response = rawhttp.request(edge.port, b"GET", target, [(b"X-Custom", "café ☕".encode())])
    assert response.status == 200, response
    assert response.json()["raw_path"] == target.decode()
    assert response.json()["headers"]["x-custom"] == "café ☕"


@pytest.mark.parametrize("value", [b"\xff", b"\xed\xa0\x80", b"Bearer caf\xc3"])
@pytest.mark.parametrize("name", [b"X-Custom", b"Authorization", b"apikey"])
def test_a_proxied_header_that_is_not_utf8_gets_cloudfronts_400_not_a_changed_header(
    edge: BackgroundServer, name: bytes, value: bytes
) -> None:
    """The edge's HTTP client cannot send those bytes (it would drop them silently): refuse, never forward a header
    the viewer did not send."""
    for target in (b"/rest/v1/echo", b"/realtime/v1/websocket"):
        upgrade = [(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket"), (b"Sec-WebSocket-Version", b"13"),
                   (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ==")] if b"websocket" in target else []  # fmt: skip
        response = rawhttp.request(edge.port, b"GET", target, [(name, value), *upgrade])
        assert response.status == 400, (target, response)
        assert response.headers["x-cache"] == "Error from cloudfront" and b"Bad request" in response.body


@pytest.mark.parametrize("target", [b"/rest/v1/%0A", b"/rest/v1/a%0d%0ab", b"/auth/v1/%0a?x=%0a"])
def test_paths_with_encoded_newlines_are_proxied_not_a_404_of_the_edge(edge: BackgroundServer, target: bytes) -> None:
    response = rawhttp.request(edge.port, b"GET", target)
    assert response.status == 200 and response.headers["x-origin-region"] in (SINGAPORE, JAPAN), response
    assert response.json()["raw_path"] == target.decode()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [(b"PUT", b"/_edge/admin/primary", 405), (b"DELETE", b"/_edge/admin/hops", 405),
     (b"POST", b"/_edge/status", 405), (b"GET", b"/_edge/admin/nope", 404), (b"POST", b"/_edge/", 404)],
)  # fmt: skip
def test_the_edges_own_routes_answer_other_methods_and_paths_in_json(
    edge: BackgroundServer, method: bytes, path: bytes, status: int
) -> None:
    response = rawhttp.request(edge.port, method, path, AUTH)
    assert response.status == status, response
    assert isinstance(response.json()["message"], str) and response.headers["cache-control"] == "no-store"
