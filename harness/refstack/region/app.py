"""The region server: one process speaking the Supabase subset the WhatsApp Clone uses (docs/protocols.md §1–6).

    lifecycle.py                its PostgreSQL: started (or copied from the primary) before the routes serve
    /auth/v1      auth.py       GoTrue: sign-up, password and refresh grants, /user, admin users
    /rest/v1      rest/         PostgREST: each request one SQL statement as the caller's role (database.py)
    /realtime/v1  realtime.py   Phoenix channels vsn 1.0.0: postgres_changes, broadcast, presence
    /storage/v1   storage.py    buckets and objects, signed URLs
    /functions/v1 functions.py  the livekit-token edge function
    /health                     region, role, uptime, replication
    /_admin/postgres            where its PostgreSQL listens (service role; a replica's base backup asks it)
    /_admin/hops                load-test messages counted per hop (service role; realtime/hopstats.py)

Every response carries `x-origin-region`, so a load test can tell which region served it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from harness.refstack.region import (
    auth,
    forwarding,
    functions,
    http_errors,
    lifecycle,
    realtime,
    replication,
    rest,
    storage,
)
from harness.refstack.region.config import RegionConfig
from harness.refstack.region.realtime import hopstats
from harness.refstack.region.state import CONFIG, STARTED_AT, require_service

log = logging.getLogger(__name__)

ORIGIN_REGION_HEADER = "x-origin-region"


@web.middleware
async def _never_500_on_bad_input(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """A bug must still answer in JSON; the fuzz tests make sure bad input never reaches this."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response({"message": "internal server error"}, status=500)


async def _stamp_region(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[ORIGIN_REGION_HEADER] = request.app[CONFIG].region


async def _health(request: web.Request) -> web.Response:
    """200 with role and replication lag while the region's PostgreSQL answers; 503 while it cannot (the edge then
    counts the origin unhealthy)."""
    app = request.app
    config = app[CONFIG]
    body: dict[str, Any] = {
        "status": "ok",
        "region": config.region,
        "uptime_s": round(time.monotonic() - app[STARTED_AT], 3),
    }
    body |= await replication.status(app)
    if not body["database_reachable"]:
        body["status"] = "unavailable"
    return web.json_response(body, status=200 if body["database_reachable"] else 503)


async def _drop_realtime_sockets(request: web.Request) -> web.Response:
    """Test and drill aid: close (or, with ?abort=true, reset) every Realtime socket, as a server restart would."""
    require_service(request)
    count = realtime.subscriber_count(request.app)
    await realtime.disconnect_all(request.app, abort=request.query.get("abort") == "true")
    return web.json_response({"disconnected": count})


def build_app(config: RegionConfig | None = None) -> web.Application:
    config = config or RegionConfig()
    app = web.Application(
        middlewares=[http_errors.json_errors, _never_500_on_bad_input],
        client_max_size=config.storage_file_size_limit_bytes + 1024 * 1024,
    )
    app[CONFIG] = config
    app[STARTED_AT] = time.monotonic()
    app.on_response_prepare.append(_stamp_region)
    # The database first up and last down: every module's start-up hook finds app[DB] open, and its clean-up
    # (stop background tasks in on_shutdown or on_cleanup) runs before the pools and the server stop.
    app.on_startup.append(lifecycle.start)
    app.router.add_get("/health", _health)
    app.router.add_get("/_admin/postgres", lifecycle.postgres_address)
    app.router.add_post("/_admin/realtime/disconnect", _drop_realtime_sockets)
    hopstats.add_routes(app)
    for module in (auth, rest, realtime, storage, functions, replication, forwarding):
        module.setup(app)
    app.on_cleanup.append(lifecycle.stop)
    return app


def build_app_from_options(**options: Any) -> web.Application:
    """`build_app` from JSON-able keyword arguments (how `procs.launch` starts a region in its own process)."""
    for name in ("data_dir", "migrations_dir"):
        if options.get(name) is not None:
            options[name] = Path(options[name])
    return build_app(RegionConfig(**options))
