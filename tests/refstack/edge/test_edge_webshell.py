"""The web shell through the edge: compression negotiation, cache headers, security headers."""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from typing import Any

import brotli
import httpx
import pytest

from harness.refstack.edge.webshell import build_webshell, choose_encoding, synthetic_main_js


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("gzip, deflate, br, zstd", "br"),
        ("gzip, br;q=0", "gzip"),
        ("gzip;q=0.1, br;q=0.9", "br"),  # preference order is the server's: br > gzip > identity
        ("gzip", "gzip"),
        ("deflate", "identity"),
        ("", "identity"),
        ("*", "br"),
        ("*, br;q=0", "gzip"),
        ("br;q=nonsense, gzip", "gzip"),
        ("identity", "identity"),
    ],
)
def test_encoding_negotiation(accept: str, chosen: str) -> None:
    assert choose_encoding(accept) == chosen


def test_main_js_is_deterministic_two_megabytes_and_compressible_like_js() -> None:
    first, second = synthetic_main_js(), synthetic_main_js()
    assert first == second
    assert len(first) == 2_000_000
    assert first.startswith(b"(function dartProgram(){")
    ratio = len(gzip.compress(first)) / len(first)
    assert 0.15 < ratio < 0.5, ratio  # real dart2js output gzips to about a third; random bytes would be ~1.0


def get(edge: Any, path: str, accept_encoding: str = "", **headers: str) -> httpx.Response:
    # httpx would decode bodies itself; read raw bytes to check what went over the wire.
    with httpx.Client(base_url=edge.url, timeout=10) as client:
        req = client.build_request("GET", path, headers={"Accept-Encoding": accept_encoding, **headers})
        resp = client.send(req, stream=True)
        resp.raw_body = b"".join(resp.iter_raw())  # type: ignore[attr-defined]
        resp.close()
        return resp


@pytest.mark.parametrize(
    ("accept", "encoding", "decode"),
    [
        ("gzip, deflate, br", "br", brotli.decompress),
        ("gzip, deflate", "gzip", gzip.decompress),
        ("", None, lambda b: b),
    ],
)
def test_main_js_compression_is_negotiated(
    start_edge: Callable[..., Any], accept: str, encoding: str | None, decode: Callable[[bytes], bytes]
) -> None:
    edge = start_edge()
    resp = get(edge, "/main.dart.js", accept)
    assert resp.status_code == 200
    assert resp.headers.get("content-encoding") == encoding
    assert resp.headers["vary"] == "Accept-Encoding"
    assert resp.headers["content-type"].startswith("application/javascript")
    body = resp.raw_body  # type: ignore[attr-defined]
    assert decode(body) == synthetic_main_js()
    if encoding:
        assert len(body) < 1_000_000


def test_index_is_not_cached_and_carries_security_headers(start_edge: Callable[..., Any]) -> None:
    edge = start_edge()
    for path in ("/", "/index.html", "/chats/42"):  # the last: a client-side route falls back to the shell
        resp = get(edge, path, "br")
        assert resp.status_code == 200
        assert resp.headers["cache-control"] == "no-cache"
        assert b"<title>WhatsApp Clone</title>" in brotli.decompress(resp.raw_body)  # type: ignore[attr-defined]
        assert resp.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        csp = resp.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "object-src 'none'" in csp
        assert resp.headers["x-edge-location"] == "SIN-LOCAL"


def test_hashed_assets_are_immutable_and_linked_from_the_shell(start_edge: Callable[..., Any]) -> None:
    edge = start_edge()
    index = get(edge, "/index.html").raw_body.decode()  # type: ignore[attr-defined]
    shell = build_webshell()
    assert re.fullmatch(r"/assets/main\.[0-9a-f]{16}\.js", shell.main_js_path)
    assert shell.main_js_path.encode() in get(edge, "/flutter_bootstrap.js").raw_body  # type: ignore[attr-defined]
    assert shell.font_path in index
    for path in (shell.main_js_path, shell.font_path):
        resp = get(edge, path, "gzip")
        assert resp.status_code == 200
        assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"
    font = get(edge, shell.font_path, "gzip, br")
    assert font.headers["content-type"] == "font/woff2"
    assert "content-encoding" not in font.headers  # woff2 is compressed already


def test_etag_revalidation_returns_304(start_edge: Callable[..., Any]) -> None:
    edge = start_edge()
    first = get(edge, "/main.dart.js", "gzip")
    again = get(edge, "/main.dart.js", "gzip", **{"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.raw_body == b""  # type: ignore[attr-defined]
    assert first.headers["etag"] != get(edge, "/main.dart.js", "br").headers["etag"]


def test_unknown_file_is_404_and_writes_are_refused(start_edge: Callable[..., Any]) -> None:
    edge = start_edge()
    assert get(edge, "/assets/missing.js").status_code == 404
    resp = httpx.post(f"{edge.url}/index.html", content=b"x")
    assert resp.status_code == 405
    assert resp.headers["allow"] == "GET, HEAD"
