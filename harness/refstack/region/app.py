"""The region server: one process speaking the Supabase subset the WhatsApp Clone uses (docs/protocols.md §1–6).

    /auth/v1      auth.py       GoTrue: sign-up, password and refresh grants, /user, admin users
    /rest/v1      rest.py       PostgREST over the four app tables, with the app's row-level access (rls.py)
    /realtime/v1  realtime.py   Phoenix channels vsn 1.0.0: postgres_changes, broadcast, presence
    /storage/v1   storage.py    buckets and objects, signed URLs
    /functions/v1 functions.py  the livekit-token edge function
    /health                     region, role, uptime

Every response carries `x-origin-region`, so a load test can tell which region served it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from harness.refstack.region import auth, forwarding, functions, realtime, replication, rest, storage
from harness.refstack.region.config import RegionConfig
from harness.refstack.region.db import Database
from harness.refstack.region.membership import Membership
from harness.refstack.region.state import CONFIG, DB, MEMBERSHIP, STARTED_AT

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
    app = request.app
    config = app[CONFIG]
    body = {
        "status": "ok",
        "region": config.region,
        "uptime_s": round(time.monotonic() - app[STARTED_AT], 3),
        **replication.status(app),
    }
    return web.json_response(body)


async def _drop_realtime_sockets(request: web.Request) -> web.Response:
    """Test and drill aid: close (or, with ?abort=true, reset) every Realtime socket, as a server restart would."""
    replication.require_service(request)
    count = realtime.subscriber_count(request.app)
    await realtime.disconnect_all(request.app, abort=request.query.get("abort") == "true")
    return web.json_response({"disconnected": count})


def build_app(config: RegionConfig | None = None) -> web.Application:
    config = config or RegionConfig()
    app = web.Application(
        middlewares=[_never_500_on_bad_input], client_max_size=config.storage_file_size_limit_bytes + 1024 * 1024
    )
    db_path = None
    if config.data_dir is not None:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        db_path = config.data_dir / f"{config.region}.sqlite3"
    db = Database(db_path)
    db.read_only = config.role == "replica"
    app[CONFIG] = config
    app[DB] = db
    app[MEMBERSHIP] = Membership(db)
    app[STARTED_AT] = time.monotonic()
    app.on_response_prepare.append(_stamp_region)
    app.router.add_get("/health", _health)
    app.router.add_post("/_admin/realtime/disconnect", _drop_realtime_sockets)
    for module in (auth, rest, realtime, storage, functions, replication, forwarding):
        module.setup(app)

    async def close_db(_app: web.Application) -> None:
        db.close()

    app.on_cleanup.append(close_db)
    return app


def build_app_from_options(**options: Any) -> web.Application:
    """`build_app` from JSON-able keyword arguments (how `procs.launch` starts a region in its own process)."""
    if options.get("data_dir") is not None:
        options["data_dir"] = Path(options["data_dir"])
    return build_app(RegionConfig(**options))
