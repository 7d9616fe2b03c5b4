"""The reference edge's "build" switch: a stand-in for deploying a bad release, so the deployment gate can be
demonstrated catching one and rolling it back (docs/deploy-gate.md).

    POST /_edge/admin/build {"build": "good" | "slow" | "failing", "delay_ms": 2500}
    GET  /_edge/admin/build                    both with Authorization: Bearer <admin token>

`slow` holds every proxied request and web-shell response for `delay_ms` (default 2,500 ms: over the 2 s p95
gate); `failing` answers them 503 as a broken release behind CloudFront would. The edge's own API keeps working, so
a rollback can switch back to `good`. Protected like the primary switch (admin.py): off without an admin token.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from harness.model import strict_json

from . import admin

PATH = "/_edge/admin/build"
BUILDS = ("good", "slow", "failing")
DEFAULT_DELAY_MS = 2500
MAX_DELAY_MS = 60_000


@dataclass
class Build:
    name: str = "good"
    delay_ms: int = DEFAULT_DELAY_MS

    def as_dict(self) -> dict[str, object]:
        return {"build": self.name, "delay_ms": self.delay_ms}

    async def apply(self) -> web.Response | None:
        """What the build does to one request: None to serve it (after a delay when slow), or the failure."""
        if self.name == "slow":
            await asyncio.sleep(self.delay_ms / 1000)
        elif self.name == "failing":
            return web.Response(status=503, text="Service Unavailable (build: failing)", headers=admin.NO_STORE)
        return None


BUILD = web.AppKey("edge_build", Build)


async def get_build(request: web.Request) -> web.Response:
    refusal = admin.refusal_of(request)
    if refusal is not None:
        return refusal
    return web.json_response(request.app[BUILD].as_dict(), headers=admin.NO_STORE)


async def set_build(request: web.Request) -> web.Response:
    refusal = admin.refusal_of(request)
    if refusal is not None:
        return refusal
    expected = f'expected {{"build": B, "delay_ms": N}} with B one of {", ".join(BUILDS)}, N 0-{MAX_DELAY_MS}'
    try:
        body = strict_json.loads(await request.read())
    except strict_json.JsonBodyError as exc:
        return admin.json_error(400, f"the body is not JSON ({exc.message}); {expected}")
    name = body.get("build") if isinstance(body, dict) else None
    delay = body.get("delay_ms", DEFAULT_DELAY_MS) if isinstance(body, dict) else None
    if name not in BUILDS or not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= MAX_DELAY_MS:
        return admin.json_error(400, expected)
    build = request.app[BUILD]
    build.name, build.delay_ms = str(name), delay
    return web.json_response(build.as_dict(), headers=admin.NO_STORE)


def add_routes(app: web.Application) -> None:
    app[BUILD] = Build()
    app.router.add_get(PATH, get_build)
    app.router.add_post(PATH, set_build)
