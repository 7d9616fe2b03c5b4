"""Two small real origins (Singapore, Japan) and an edge in front of them, all on loopback port 0.

The origins are tiny aiohttp apps, not the region server: the edge's tests check routing and proxying, and must
not depend on the region server's schema. Each answers /health, an echo route, a streaming upload and a streaming
download, and a websocket echo, and sets x-origin-region on every response, as the region servers do.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from harness.procs.serving import BackgroundServer
from harness.refstack.edge.server import build_app

SINGAPORE = "ap-southeast-1"
JAPAN = "ap-northeast-1"
DEADLINE_S = 10.0


@dataclass
class OriginProbe:
    """Shared between a test and an origin running in a background thread (thread-safe primitives only)."""

    upload_started: threading.Event = field(default_factory=threading.Event)
    download_release: threading.Event = field(default_factory=threading.Event)


def origin_app(region: str, probe: OriginProbe) -> Callable[[], web.Application]:
    async def add_region(_request: web.Request, response: web.StreamResponse) -> None:
        response.headers["x-origin-region"] = region

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "region": region})

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {
                "region": region,
                "method": request.method,
                "path": request.path,
                "raw_path": request.raw_path,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body.decode(errors="replace"),
            }
        )

    async def upload(request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.content.iter_chunked(64 * 1024):
            if size == 0:
                probe.upload_started.set()
            digest.update(chunk)
            size += len(chunk)
        return web.json_response(
            {"region": region, "bytes": size, "sha256": digest.hexdigest(), "content_length": request.content_length}
        )

    async def download(request: web.Request) -> web.StreamResponse:
        # First half, then wait (off-loop) until the viewer has it: proves the edge streams instead of buffering.
        half = b"x" * int(request.query.get("half_bytes", "65536"))
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(half)
        await resp.drain()
        released = await asyncio.get_running_loop().run_in_executor(None, probe.download_release.wait, DEADLINE_S)
        await resp.write(half if released else b"")
        await resp.write_eof()
        return resp

    async def ws_echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("phoenix",))
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is web.WSMsgType.TEXT:
                if msg.data == "close-please":
                    await ws.close(code=4001, message=b"bye")
                    break
                await ws.send_str(
                    json.dumps(
                        {
                            "region": region,
                            "echo": msg.data,
                            "country": request.headers.get("CloudFront-Viewer-Country"),
                        }
                    )
                )
            elif msg.type is web.WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    def factory() -> web.Application:
        app = web.Application()
        app.on_response_prepare.append(add_region)
        app.router.add_get("/health", health)
        app.router.add_route("*", "/rest/v1/{tail:[\\s\\S]*}", echo)
        app.router.add_route("*", "/auth/v1/{tail:[\\s\\S]*}", echo)
        app.router.add_post("/storage/v1/object/{tail:.*}", upload)
        app.router.add_get("/storage/v1/download", download)
        app.router.add_get("/realtime/v1/websocket", ws_echo)
        app.router.add_get("/ws-anywhere", ws_echo)
        return app

    return factory


@dataclass
class Origin:
    region: str
    probe: OriginProbe
    server: BackgroundServer
    running: bool = True

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        if self.running:  # BackgroundServer.stop is not idempotent
            self.server.stop()
            self.running = False

    def restart(self) -> None:
        """Start again on the same port, as a recovered region would."""
        self.server = BackgroundServer(origin_app(self.region, self.probe), port=self.server.port).start()
        self.running = True


@pytest.fixture
def origins() -> Iterator[dict[str, Origin]]:
    made: dict[str, Origin] = {}
    try:
        for region in (SINGAPORE, JAPAN):
            probe = OriginProbe()
            made[region] = Origin(region, probe, BackgroundServer(origin_app(region, probe)).start())
        yield made
    finally:
        for origin in made.values():
            origin.stop()


EdgeFactory = Callable[..., BackgroundServer]


@pytest.fixture
def start_edge(origins: dict[str, Origin]) -> Iterator[EdgeFactory]:
    """Start an edge in front of `origins` (keyword arguments go to build_app); stopped after the test."""
    started: list[BackgroundServer] = []

    def start(**kwargs: object) -> BackgroundServer:
        urls = {region: o.url for region, o in origins.items()}
        kwargs.setdefault("origins", urls)
        server = BackgroundServer(lambda: build_app(**kwargs)).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def wait_for(predicate: Callable[[], bool], deadline_s: float = DEADLINE_S, what: str = "condition") -> float:
    """Poll until `predicate()` holds; return the seconds it took. Fails the test at the deadline."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"{what} not reached within {deadline_s} s")


@pytest.fixture
def poll() -> Callable[..., float]:
    return wait_for
