"""End to end: real origins, the edge in front, a viewer on loopback (httpx and websocket-client)."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websocket

from harness.errors import ConfigError
from harness.procs.serving import background
from harness.refstack.edge.server import build_app

SINGAPORE = "ap-southeast-1"
JAPAN = "ap-northeast-1"
UPLOAD_BYTES = 20 * 1024 * 1024
CHUNK = 256 * 1024


def ws_url(http_url: str, path: str) -> str:
    return "ws" + http_url.removeprefix("http") + path


@pytest.mark.parametrize(
    ("country", "region"), [("CN", JAPAN), ("SG", SINGAPORE), (None, SINGAPORE), ("HK", SINGAPORE)]
)
def test_viewer_country_picks_the_region(start_edge: Callable[..., Any], country: str | None, region: str) -> None:
    edge = start_edge()
    headers = {"CloudFront-Viewer-Country": country} if country else {}
    resp = httpx.get(f"{edge.url}/rest/v1/messages?select=*&limit=5", headers=headers)
    assert resp.status_code == 200
    assert resp.headers["x-origin-region"] == region
    assert resp.json()["region"] == region
    assert resp.headers["x-edge-location"] == "SIN-LOCAL"


def test_method_query_and_headers_reach_the_origin(start_edge: Callable[..., Any]) -> None:
    edge = start_edge(edge_location="NRT-TEST")
    resp = httpx.patch(
        f"{edge.url}/rest/v1/messages?id=eq.7&select=id,body%20text",
        headers={
            "CloudFront-Viewer-Country": "CN",
            "Authorization": "Bearer t",
            "Prefer": "return=representation",
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "must-not-pass",
        },
        content=b'{"body":"hi"}',
    )
    echoed = resp.json()
    assert echoed["method"] == "PATCH"
    assert echoed["raw_path"] == "/rest/v1/messages?id=eq.7&select=id,body%20text"
    assert echoed["body"] == '{"body":"hi"}'
    assert echoed["headers"]["authorization"] == "Bearer t"
    assert echoed["headers"]["prefer"] == "return=representation"
    assert echoed["headers"]["cloudfront-viewer-country"] == "CN"
    assert echoed["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert "x-hop" not in echoed["headers"]  # named in Connection: hop-by-hop
    assert resp.headers["x-edge-location"] == "NRT-TEST"
    assert resp.headers["x-amz-cf-pop"] == "NRT-TEST"


def test_proxied_responses_carry_security_headers(start_edge: Callable[..., Any]) -> None:
    edge = start_edge()
    resp = httpx.get(f"{edge.url}/auth/v1/settings")
    assert resp.headers["strict-transport-security"].startswith("max-age=31536000")
    assert resp.headers["x-content-type-options"] == "nosniff"


def test_20_mb_streamed_upload_passes_and_is_streamed(start_edge: Callable[..., Any], origins: dict[str, Any]) -> None:
    edge = start_edge()
    probe = origins[SINGAPORE].probe
    digest = hashlib.sha256()
    streamed_before_end = threading.Event()

    def body() -> Iterator[bytes]:
        for i in range(UPLOAD_BYTES // CHUNK):
            chunk = bytes([i % 251]) * CHUNK
            digest.update(chunk)
            yield chunk
            # The origin must see bytes while the viewer is still sending: the edge does not buffer uploads.
            if i == 8 and probe.upload_started.wait(10):
                streamed_before_end.set()

    resp = httpx.post(f"{edge.url}/storage/v1/object/chat-media/big.bin", content=body(), timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.json()["bytes"] == UPLOAD_BYTES
    assert resp.json()["sha256"] == digest.hexdigest()
    assert streamed_before_end.is_set()


def test_upload_with_content_length_keeps_it(start_edge: Callable[..., Any]) -> None:
    edge = start_edge()
    payload = b"a" * 3_000_000
    resp = httpx.post(f"{edge.url}/storage/v1/object/chat-media/x.bin", content=payload, timeout=30)
    assert resp.json()["bytes"] == len(payload)
    assert resp.json()["content_length"] == len(payload)


def test_download_is_streamed_not_buffered(start_edge: Callable[..., Any], origins: dict[str, Any]) -> None:
    edge = start_edge()
    probe = origins[SINGAPORE].probe
    received = 0
    with httpx.stream("GET", f"{edge.url}/storage/v1/download?half_bytes=100000", timeout=30) as resp:
        for chunk in resp.iter_raw():
            received += len(chunk)
            if received >= 100_000:
                # Only now does the origin send the second half; a buffering edge would have waited for it.
                probe.download_release.set()
    assert received == 200_000


@pytest.mark.parametrize(("country", "region"), [("CN", JAPAN), ("US", SINGAPORE)])
def test_realtime_websocket_goes_to_the_viewers_region(
    start_edge: Callable[..., Any], country: str, region: str
) -> None:
    edge = start_edge()
    ws = websocket.create_connection(
        ws_url(edge.url, "/realtime/v1/websocket?apikey=k&vsn=1.0.0"),
        header=[f"CloudFront-Viewer-Country: {country}"],
        subprotocols=["phoenix"],
        timeout=10,
    )
    try:
        assert (ws.getheaders() or {})["x-origin-region"] == region
        assert (ws.getheaders() or {})["x-edge-location"] == "SIN-LOCAL"
        assert ws.getsubprotocol() == "phoenix"
        for i in range(3):
            ws.send(json.dumps({"topic": "realtime:room", "event": "phx_join", "ref": str(i)}))
            reply = json.loads(ws.recv())
            assert reply["region"] == region
            assert reply["country"] == country
            assert json.loads(reply["echo"])["ref"] == str(i)
        ws.send_binary(b"\x00\x01binary")
        assert ws.recv() == b"\x00\x01binary"
    finally:
        ws.close()


def test_any_websocket_upgrade_is_proxied_and_close_codes_pass(start_edge: Callable[..., Any]) -> None:
    edge = start_edge()
    ws = websocket.create_connection(ws_url(edge.url, "/ws-anywhere"), timeout=10)
    try:
        ws.send("close-please")
        frame = ws.recv_data_frame(control_frame=True)[1]
        assert frame.opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(frame.data[:2], "big") == 4001
    finally:
        ws.close()


def test_websocket_refused_by_the_origin_keeps_its_status(start_edge: Callable[..., Any]) -> None:
    edge = start_edge()
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(ws_url(edge.url, "/realtime/v1/nowhere"), timeout=10)
    assert info.value.status_code == 404


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_origin_gives_cloudfront_502() -> None:
    dead = f"http://127.0.0.1:{_dead_port()}"
    with background(lambda: build_app(origins={SINGAPORE: dead, JAPAN: dead})) as edge:
        resp = httpx.get(f"{edge.url}/rest/v1/messages")
        assert resp.status_code == 502
        assert "ERROR: The request could not be satisfied" in resp.text
        assert "Generated by cloudfront (CloudFront)" in resp.text
        assert resp.headers["x-cache"] == "Error from cloudfront"
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            websocket.create_connection(ws_url(edge.url, "/realtime/v1/websocket"), timeout=10)
        assert info.value.status_code == 502


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"origins": {SINGAPORE: "http://127.0.0.1:1"}}, "no URL for region 'ap-northeast-1'"),
        ({"origins": {SINGAPORE: "127.0.0.1:1", JAPAN: "http://127.0.0.1:2"}}, "is not a base URL"),
        ({"origins": {SINGAPORE: "http://a", JAPAN: "http://b"}, "failure_threshold": 0}, "failure_threshold: 0"),
        ({"origins": {SINGAPORE: "http://a", JAPAN: "http://b"}, "health_interval_s": 0}, "health_interval_s: 0"),
    ],
)
def test_bad_edge_config_names_the_value(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_app(**kwargs)
    assert message in str(info.value)
