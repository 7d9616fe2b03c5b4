"""Raw-socket fuzzing of every HTTP surface of the edge (hypothesis, bounded): its admin API (traffic switch, hop
counts) with random tokens and hazardous bodies, /_edge/status, the web shell's paths, and proxied paths with
random bytes in the path, query string and headers (websocket upgrades too). Never a 5xx; admin errors are JSON
`{"message"}`; a refused admin request changes nothing; proxied requests reach the origin or get CloudFront's
400, never an altered request."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.procs.serving import BackgroundServer
from harness.refstack.edge.server import build_app
from tests.refstack import fuzzing, rawhttp
from tests.refstack.edge.conftest import JAPAN, SINGAPORE, OriginProbe, origin_app

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
TOKEN = b"edge-fuzz-admin-token"
ADMIN = [b"/_edge/admin/primary", b"/_edge/admin/hops"]
UPGRADE = [(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket"), (b"Sec-WebSocket-Version", b"13"),
           (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ==")]  # fmt: skip


SHELL_HEADERS = [b"Accept-Encoding", b"If-None-Match", b"Range", b"CloudFront-Viewer-Country"]
PROXY_HEADERS = [b"Authorization", b"apikey", b"X-Custom", b"CloudFront-Viewer-Country", b"Cookie"]


@pytest.fixture(scope="module")
def edge() -> Iterator[BackgroundServer]:
    origins = [BackgroundServer(origin_app(region, OriginProbe())).start() for region in (SINGAPORE, JAPAN)]
    urls = {SINGAPORE: origins[0].url, JAPAN: origins[1].url}
    server = BackgroundServer(
        lambda: build_app(origins=urls, admin_token=TOKEN.decode(), health_interval_s=0.5)
    ).start()
    try:
        yield server
    finally:
        server.stop()
        for origin in origins:
            origin.stop()


def _primary(edge: BackgroundServer) -> str:
    response = rawhttp.request(edge.port, b"GET", b"/_edge/admin/primary", [(b"Authorization", b"Bearer " + TOKEN)])
    assert response.status == 200, response
    return str(response.json()["primary_region"])


tokens = st.one_of(
    st.just(TOKEN), st.just(b""), fuzzing.header_value, st.sampled_from(fuzzing.ODD_BYTES).map(TOKEN.__add__)
)
admin_bodies = st.one_of(
    fuzzing.any_body({"region": JAPAN}),
    fuzzing.any_body({"fault": "relayed:3"}),
    st.sampled_from([{"region": JAPAN}, {"region": SINGAPORE}, {"fault": "off"}, {"region": "mars"}, {"fault": 7}]).map(
        lambda v: json.dumps(v).encode()
    ),
)


@FUZZ
@given(
    path=st.sampled_from(ADMIN),
    method=st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE"]),
    token=tokens,
    scheme=st.sampled_from([b"Bearer ", b"bearer ", b"Basic ", b""]),
    body=admin_bodies,
    query=fuzzing.query,
)
def test_the_admin_api(
    edge: BackgroundServer, path: bytes, method: bytes, token: bytes, scheme: bytes, body: bytes, query: bytes
) -> None:
    before = _primary(edge)
    response = rawhttp.request(edge.port, method, path + query, [(b"Authorization", scheme + token)], body)
    assert response.status < 500, response
    if response.refused_by_http_parser:
        return
    if response.status >= 400:
        assert isinstance(response.json()["message"], str), response
        if path.endswith(b"primary"):
            assert _primary(edge) == before, "a refused switch must change nothing"
    authorised = scheme.lower() == b"bearer " and token == TOKEN
    if not authorised:
        assert response.status in (401, 405), response


@FUZZ
@given(
    method=st.sampled_from([b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS"]),
    prefix=st.sampled_from([b"/", b"/assets/", b"/index.html", b"/_edge/status", b"/_edge/", b"/some/app/route/"]),
    tail=fuzzing.path_tail,
    query=fuzzing.query,
    extra=st.lists(st.tuples(st.sampled_from(SHELL_HEADERS), fuzzing.header_value), max_size=3),
)
def test_the_web_shell_and_status(
    edge: BackgroundServer, method: bytes, prefix: bytes, tail: bytes, query: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    target = prefix + (tail if prefix.endswith(b"/") else b"") + query
    response = rawhttp.request(edge.port, method, target, extra)
    assert response.status < 500, (target, response)


@FUZZ
@given(
    method=st.sampled_from([b"GET", b"POST", b"PATCH", b"DELETE", b"HEAD"]),
    prefix=st.sampled_from([b"/rest/v1/", b"/auth/v1/", b"/storage/v1/object/", b"/functions/v1/", b"/health"]),
    tail=fuzzing.path_tail,
    query=fuzzing.query,
    extra=st.lists(st.tuples(st.sampled_from(PROXY_HEADERS), fuzzing.header_value), max_size=3),
    body=st.one_of(st.just(b""), fuzzing.any_body()),
    upgrade=st.booleans(),
)
def test_proxied_requests(
    edge: BackgroundServer,
    method: bytes,
    prefix: bytes,
    tail: bytes,
    query: bytes,
    extra: list[tuple[bytes, bytes]],
    body: bytes,
    upgrade: bool,
) -> None:
    target = prefix + (tail if prefix.endswith(b"/") else b"") + query
    sent = extra + (UPGRADE if upgrade else [])
    response = rawhttp.request(edge.port, method if not upgrade else b"GET", target, sent, body if not upgrade else b"")
    assert response.status < 500, (target, response)
    unsendable = any(_not_utf8(value) for _, value in extra)
    if response.status == 400 and response.headers.get("x-cache") == "Error from cloudfront":
        assert unsendable, (target, extra, response)
    elif response.status != 101 and not response.refused_by_http_parser:
        assert not unsendable, (target, extra, response)
        assert response.headers["x-origin-region"] in (SINGAPORE, JAPAN), response


def _not_utf8(value: bytes) -> bool:
    try:
        value.strip(b" \t").decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_the_edge_still_routes_after_fuzzing(edge: BackgroundServer) -> None:
    response = rawhttp.request(edge.port, b"GET", b"/rest/v1/ping", [(b"CloudFront-Viewer-Country", b"SG")])
    assert response.status == 200 and response.headers["x-origin-region"] == _primary(edge)
