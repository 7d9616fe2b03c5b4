"""Transport against a small real aiohttp server (its own process: asyncio cannot run in this gevent-patched one)
that sends bodies which cannot be read or decoded: each is a failure value with a clear message, never an
exception, and the connection pool keeps working after it."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from collections.abc import Iterator

import brotli
import pytest

from harness.clients.events import ListEvent, Reporter
from harness.clients.http import Transport, decode_body

SERVER = r"""
import sys
import brotli
from aiohttp import web
from harness.procs import serving

def reply(status, body=b"", encoding=None):
    async def handler(request):
        headers = {"x-origin-region": "test-1", "x-seen-country": request.headers.get("CloudFront-Viewer-Country", "")}
        if encoding:
            headers["Content-Encoding"] = encoding
        return web.Response(status=status, body=body, headers=headers)
    return handler

async def echo(request):  # what came on the wire: the raw request target and the Accept-Encoding
    return web.json_response({"target": request.raw_path, "accept_encoding": request.headers.get("Accept-Encoding")})

async def cut(request):  # promises 1000 bytes, sends 10, hangs up
    response = web.StreamResponse(headers={"Content-Length": "1000"})
    await response.prepare(request)
    await response.write(b"0123456789")
    request.transport.close()
    return response

def factory():
    app = web.Application()
    app.router.add_get("/not-modified", reply(304, encoding="br"))
    app.router.add_get("/good-br", reply(200, brotli.compress(b'{"ok": true}'), "br"))
    app.router.add_get("/bad-br", reply(200, b"definitely not brotli", "br"))
    app.router.add_get("/bad-gzip", reply(200, b"not gzip either", "gzip"))
    app.router.add_get("/bad-error-body", reply(500, b"\xff\xfe garbage", "br"))
    app.router.add_get("/zstd", reply(200, b"\x28\xb5\x2f\xfd", "zstd"))
    app.router.add_get("/cut", cut)
    app.router.add_get("/echo/{tail:.*}", echo)
    return app

serving.serve_forever(factory, "127.0.0.1", 0, on_ready=lambda port: print(port, flush=True))
"""


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20.0)  # bounded wait for the port line
        assert ready, "the test server printed no port within 20 s"
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def transport(server_url: str, events: ListEvent) -> Iterator[Transport]:
    t = Transport(server_url, Reporter(request_event=events), headers={"CloudFront-Viewer-Country": "CN"})
    yield t
    t.close()


def test_a_304_that_names_br_with_an_empty_body_is_a_plain_304(transport: Transport, events: ListEvent) -> None:
    reply = transport.call("WEB", "revalidate", "GET", "/not-modified", headers={"If-None-Match": '"x"'}, binary=True)
    assert reply.status == 304 and reply.body is None and reply.origin_region == "test-1"
    assert reply.headers.get("Content-Encoding") == "br"
    assert str(reply.error) == "WEB revalidate: 304"  # not a 2xx, so a failure to the transport; no decode error
    assert events.fired[0]["context"]["origin_region"] == "test-1"


def test_what_goes_on_the_wire_is_what_fasthttpsession_sent(transport: Transport, server_url: str) -> None:
    # no Accept-Encoding named: FastHttpSession's (and a browser's) default; one named is sent as it is
    reply = transport.call("REST", "echo", "GET", "/echo/a b/ü?q=x y&in=(1,2)", headers={})
    assert reply.body == {"target": "/echo/a%20b/%C3%BC?q=x%20y&in=(1,2)", "accept_encoding": "gzip, deflate, br"}
    named = transport.call("REST", "echo", "GET", "/echo/n", headers={"Accept-Encoding": "identity"})
    assert named.body == {"target": "/echo/n", "accept_encoding": "identity"}
    # an absolute URL (a signed URL may be one) goes to its own host, quoted the same way
    absolute = transport.call("STORAGE", "echo", "GET", f"{server_url}/echo/abs olute", headers={})
    assert absolute.body == {"target": "/echo/abs%20olute", "accept_encoding": "gzip, deflate, br"}


def test_a_br_body_is_decoded(transport: Transport) -> None:
    reply = transport.call("REST", "good", "GET", "/good-br", headers={})
    assert reply.ok and reply.body == {"ok": True}


def test_a_body_nobody_reads_is_kept_as_it_came_and_counted_in_wire_bytes(
    transport: Transport, events: ListEvent
) -> None:
    compressed = brotli.compress(b'{"ok": true}')
    reply = transport.call("WEB", "asset", "GET", "/good-br", headers={}, binary=True, decode=False)
    assert reply.ok and reply.body == compressed and reply.wire_bytes == len(compressed)
    assert events.fired[0]["response_length"] == len(compressed)
    # a body that would not decode is not looked at either, but an error body still is (its message is read)
    assert transport.call("WEB", "asset", "GET", "/bad-br", headers={}, binary=True, decode=False).ok
    failed = transport.call("WEB", "asset", "GET", "/bad-error-body", headers={}, binary=True, decode=False)
    assert failed.error is not None and failed.error.code == "body_decode_error"


@pytest.mark.parametrize(
    ("path", "status", "encoding"), [("/bad-br", 200, "br"), ("/bad-gzip", 200, "gzip"), ("/bad-error-body", 500, "br")]
)
def test_a_body_that_does_not_decode_is_a_failure_naming_the_encoding(
    transport: Transport, events: ListEvent, path: str, status: int, encoding: str
) -> None:
    reply = transport.call("WEB", "page", "GET", path, headers={}, binary=True)
    assert reply.status == status and reply.error is not None and reply.body is None
    assert reply.error.code == "body_decode_error"
    assert f"Content-Encoding '{encoding}'" in reply.error.message
    assert str(reply.error).startswith(f'WEB page: {status} body_decode_error "cannot decode a ')
    [fired] = events.fired
    assert fired["exception"] is reply.error and fired["context"]["origin_region"] == "test-1"
    assert transport.call("REST", "good", "GET", "/good-br", headers={}).ok  # the pool still works


def test_an_unknown_encoding_is_a_failure_that_names_it(transport: Transport) -> None:
    reply = transport.call("WEB", "zstd", "GET", "/zstd", headers={})
    assert reply.error is not None and reply.error.code == "body_decode_error"
    assert "'zstd' is not supported (identity, gzip, deflate or br)" in reply.error.message


def test_a_body_cut_short_is_a_read_failure(transport: Transport, events: ListEvent) -> None:
    reply = transport.call("WEB", "cut", "GET", "/cut", headers={})
    assert reply.status == 200 and reply.error is not None and reply.error.code == "body_read_error"
    assert events.names(failed=True) == ["WEB cut"]
    assert transport.call("REST", "good", "GET", "/good-br", headers={}).ok


def test_transport_headers_go_on_every_request_and_a_call_header_wins(transport: Transport) -> None:
    seen = transport.call("REST", "a", "GET", "/good-br", headers={}).headers.get("x-seen-country")
    overridden = transport.call("REST", "b", "GET", "/good-br", headers={"CloudFront-Viewer-Country": "JP"})
    assert (seen, overridden.headers.get("x-seen-country")) == ("CN", "JP")


def test_no_server_is_a_status_0_failure(events: ListEvent) -> None:
    transport = Transport("http://127.0.0.1:1", Reporter(request_event=events), connection_timeout_s=2)
    started = time.monotonic()
    reply = transport.call("REST", "nothing", "GET", "/", headers={})
    assert reply.status == 0 and reply.error is not None and time.monotonic() - started < 10
    assert events.names(failed=True) == ["REST nothing"]
    transport.close()


def test_decode_body_undoes_codings_last_first_and_leaves_empty_bodies_alone() -> None:
    assert decode_body(b"", "br, gzip") == b""
    assert decode_body(brotli.compress(json.dumps([1]).encode()), "identity, br") == b"[1]"
