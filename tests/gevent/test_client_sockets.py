"""`close_websocket` against a real server that never answers a close frame (aiohttp in its own process: asyncio
cannot run in this gevent-patched one): it returns at once, and a greenlet killed around it dies.

websocket-client's own `close()` would wait for the server's close frame inside a bare `except:`; a kill landing
there was swallowed, so a Locust user leaving a meeting could not be stopped."""

from __future__ import annotations

import select
import subprocess
import sys
import time
from collections.abc import Iterator

import gevent
import pytest
import websocket

from harness.clients.sockets import close_websocket

SERVER = r"""
import asyncio
from aiohttp import web
from harness.procs import serving

async def silent(request):  # accepts, then never reads: a close frame is never answered
    ws = web.WebSocketResponse(autoclose=False)
    await ws.prepare(request)
    await asyncio.sleep(60)
    return ws

def factory():
    app = web.Application()
    app.router.add_get("/ws", silent)
    return app

serving.serve_forever(factory, "127.0.0.1", 0, on_ready=lambda port: print(port, flush=True))
"""


@pytest.fixture(scope="module")
def ws_url() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20.0)
        assert ready, "the test server printed no port within 20 s"
        yield f"ws://127.0.0.1:{int(proc.stdout.readline())}/ws"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_close_does_not_wait_for_a_silent_server(ws_url: str) -> None:
    ws = websocket.create_connection(ws_url, timeout=5)
    started = time.monotonic()
    close_websocket(ws)
    assert time.monotonic() - started < 1.0 and not ws.connected and ws.sock is None


def test_a_greenlet_killed_while_leaving_dies(ws_url: str) -> None:
    ws = websocket.create_connection(ws_url, timeout=5)

    def leave_then_idle() -> None:
        close_websocket(ws)
        gevent.sleep(30)  # a user that would go on to its next task

    greenlet = gevent.spawn(leave_then_idle)
    gevent.sleep(0)  # let it start closing
    greenlet.kill(block=True, timeout=5)
    assert greenlet.dead
