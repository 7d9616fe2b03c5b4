"""A loopback proxy that makes the reference stack look like a deployment with other names.

The reference stack serves only its own names (tables `messages` ..., bucket `attachments`, function
`livekit-token`, header `x-origin-region`). This proxy stands in front of it and speaks a custom `Names`:

    client ──(custom names)──► RenamingProxy ──(stack names)──► reference stack (edge or region)
           ◄── custom region header ◄──────── x-origin-region ◄──

REST tables, storage buckets and function names in paths, and the tables of Realtime join frames, are mapped
custom → stack; a stack name used as is answers 404 (as that deployment would), so a client that ignored the
configured names fails. Response region headers (and the Realtime handshake's) are renamed to the custom one.
Everything else (auth, the web shell, /health) passes unchanged, bodies byte for byte.

In this process: `with RenamingProxy(upstream, names) as proxy: ... proxy.url`. A gevent-patched process cannot run
asyncio, so tests/gevent/ runs it as a child instead: `PieceProcess(..., "renaming_proxy:build_app", options=
{"upstream": ..., "names": {...}})` with this folder on PYTHONPATH.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Mapping
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from harness.model.target_config import Names
from harness.procs.serving import BackgroundServer

STACK = Names()
_DROP = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding", "upgrade", "te"})
_WS_DROP = _DROP | {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-accept"}
SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session", aiohttp.ClientSession)


class RenamingProxy:
    def __init__(self, upstream: str, names: Names) -> None:
        self.upstream = upstream.rstrip("/")
        self.names = names
        tables = ("profiles", "conversations", "members", "messages")
        self.tables = {getattr(names, t): getattr(STACK, t) for t in tables}
        self.requests: list[str] = []
        """`METHOD path` of every request, as the client sent it."""
        self.joined_tables: list[str] = []
        """Tables named in Realtime join frames, as the client sent them."""
        self._server: BackgroundServer | None = None

    @property
    def server(self) -> BackgroundServer:
        """Made on first use, so a child process that only builds the app (`build_app`) makes no second loop."""
        if self._server is None:
            self._server = BackgroundServer(self._app)
        return self._server

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> RenamingProxy:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    # ---- names ----

    def _path(self, raw_path: str) -> str | None:
        """The stack's path for a client's path; None for a stack name this deployment does not have."""
        parts = raw_path.split("/")
        at, mapping = None, {}
        if raw_path.startswith("/rest/v1/"):
            at, mapping = 3, self.tables
        elif raw_path.startswith("/functions/v1/"):
            at, mapping = 3, {self.names.livekit_function: STACK.livekit_function}
        elif raw_path.startswith("/storage/v1/object/") and len(parts) > 4:
            at = 5 if parts[4] in ("sign", "list", "public", "authenticated") else 4
            mapping = {self.names.bucket: STACK.bucket}
        if at is None or len(parts) <= at:
            return raw_path
        if parts[at] in mapping:
            parts[at] = mapping[parts[at]]
        elif parts[at] in mapping.values():
            return None
        return "/".join(parts)

    def _join_out(self, text: str) -> str:
        """Client → stack: the tables of a join's postgres_changes bindings."""
        frame = json.loads(text)
        if frame.get("event") == "phx_join":
            for binding in frame.get("payload", {}).get("config", {}).get("postgres_changes", []):
                self.joined_tables.append(binding.get("table"))
                binding["table"] = self.tables.get(binding.get("table"), "no_such_table")
        return json.dumps(frame)

    def _frame_in(self, text: str) -> str:
        """Stack → client: table names back to the custom ones."""
        frame = json.loads(text)
        back = {stack: custom for custom, stack in self.tables.items()}
        payload = frame.get("payload") or {}
        for binding in (payload.get("response") or {}).get("postgres_changes", []) if isinstance(payload, dict) else []:
            binding["table"] = back.get(binding.get("table"), binding.get("table"))
        data = payload.get("data") if isinstance(payload, dict) else None
        if isinstance(data, dict) and "table" in data:
            data["table"] = back.get(data["table"], data["table"])
        return json.dumps(frame)

    # ---- serving ----

    async def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)

        async def session(app: web.Application) -> Any:
            app[SESSION] = aiohttp.ClientSession(auto_decompress=False)
            yield
            await app[SESSION].close()

        app.cleanup_ctx.append(session)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.rel_url.raw_path}")
        path = self._path(request.rel_url.raw_path)
        if path is None:
            return web.json_response({"code": "42P01", "message": "not found on this deployment"}, status=404)
        query = request.rel_url.raw_query_string
        target = URL(f"{self.upstream}{path}" + (f"?{query}" if query else ""), encoded=True)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, target)
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _DROP)
        session = request.app[SESSION]
        async with session.request(
            request.method, target, headers=headers, data=await request.read(), allow_redirects=False
        ) as upstream:
            body = await upstream.read()
            out = CIMultiDict((k, v) for k, v in upstream.headers.items() if k.lower() not in _DROP)
        region = out.popall(STACK.region_header, None)
        if region:
            out[self.names.region_header] = region[0]
        return web.Response(status=upstream.status, body=body, headers=out)

    async def _websocket(self, request: web.Request, target: URL) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _WS_DROP}
        upstream = await request.app[SESSION].ws_connect(target.with_scheme("ws"), headers=headers)
        client = web.WebSocketResponse()
        handshake = getattr(upstream, "_response", None)  # aiohttp keeps the 101 response here (no public accessor)
        region = handshake.headers.get(STACK.region_header) if handshake is not None else None
        if region:
            client.headers[self.names.region_header] = region
        await client.prepare(request)

        async def pump(source: Any, sink: Any, rewrite: Any) -> None:
            async for message in source:
                if message.type == WSMsgType.TEXT:
                    await sink.send_str(rewrite(message.data))
                elif message.type == WSMsgType.BINARY:
                    await sink.send_bytes(message.data)
                else:
                    break

        tasks = [
            asyncio.ensure_future(pump(client, upstream, self._join_out)),
            asyncio.ensure_future(pump(upstream, client, self._frame_in)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await upstream.close()
            with contextlib.suppress(Exception):
                await client.close()
        return client


def build_app(upstream: str, names: Mapping[str, str] | None = None) -> Awaitable[web.Application]:
    """The proxy's application, for `python -m harness.procs.launch renaming_proxy:build_app` (a child process)."""
    return RenamingProxy(upstream, Names(**dict(names or {})))._app()
