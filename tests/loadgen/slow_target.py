"""Loopback HTTP targets for the open-model and capacity tests, served on a background thread (aiohttp).

fixed_delay(s)          every request answered after `s` seconds
knee(rps, fast, slow)   answered after `fast` seconds while the last second saw at most `rps` requests, else
                        after `slow` seconds: a target that slows down past a known rate
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from aiohttp import web


def fixed_delay(delay_s: float) -> Callable[[], web.Application]:
    async def work(_: web.Request) -> web.Response:
        await asyncio.sleep(delay_s)
        return web.Response(text="ok")

    def factory() -> web.Application:
        app = web.Application()
        app.router.add_get("/work", work)
        return app

    return factory


def knee(max_rps: int, fast_s: float, slow_s: float) -> Callable[[], web.Application]:
    recent: deque[float] = deque()

    async def work(_: web.Request) -> web.Response:
        now = time.monotonic()
        recent.append(now)
        while recent and recent[0] < now - 1.0:
            recent.popleft()
        await asyncio.sleep(fast_s if len(recent) <= max_rps else slow_s)
        return web.Response(text="ok")

    def factory() -> web.Application:
        app = web.Application()
        app.router.add_get("/work", work)
        return app

    return factory
