"""Hold requests while the region's PostgreSQL restarts under them (failback), instead of failing them.

    request ──► gate open?  ──yes──► handler (counted in flight)
                   └──no───► wait (at most HOLD_S) ──► handler on the new pools, or 503 PGRST002

Demotion closes the gate, waits (at most DRAIN_S) for the requests in flight to finish on the old connections,
restarts Postgres as a standby, reconnects the pools and opens the gate again. A planned switchover does the same
around its whole sequence, and refuses to go on if a request is still in flight after DRAIN_S (its write could be
acknowledged after the point the new primary is known to have). Long-lived requests (Realtime
websockets), the health check and the admin routes (the demotion itself) pass without being counted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

HOLD_S = 60.0
"""How long a request waits for a restart to finish (a fresh base backup of a small database takes seconds)."""
DRAIN_S = 5.0
"""How long a restart waits for requests in flight before it stops the server under them."""
_UNCOUNTED = ("/health", "/_admin/", "/_replication/", "/realtime/")
_UNAVAILABLE = '{"code":"PGRST002","details":null,"hint":null,"message":"the database is restarting as a replica"}'

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Gate:
    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._in_flight = 0

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    @contextlib.asynccontextmanager
    async def closed(self, drain_s: float = DRAIN_S) -> AsyncIterator[bool]:
        """Close the gate, let the requests in flight finish (bounded), run the body, open again whatever happens.

        The body is given whether every request in flight finished (False: some still run after drain_s)."""
        self._open.clear()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), drain_s)
            yield self._idle.is_set()
        finally:
            self._open.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def _enter(self) -> None:
        if not self._open.is_set():
            try:
                await asyncio.wait_for(self._open.wait(), HOLD_S)
            except TimeoutError:
                raise web.HTTPServiceUnavailable(text=_UNAVAILABLE, content_type="application/json") from None
        self._in_flight += 1
        self._idle.clear()

    def _leave(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    def middleware(self) -> Middleware:
        @web.middleware
        async def hold_during_restart(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith(_UNCOUNTED):
                return await handler(request)
            await self._enter()
            try:
                return await handler(request)
            finally:
                self._leave()

        return hold_during_restart
