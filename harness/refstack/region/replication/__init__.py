"""Japan as a physical streaming replica of Singapore: PostgreSQL's own replication, promotion and failback.

    Singapore primary ──WAL (physical slot replica_ap_northeast_1)──► Japan hot standby (reads; writes: 25006)
                                                                       │ POST /_admin/promote: pg_promote()
    old primary ◄── POST /_admin/demote {"primary_url"}: pg_rewind + follow ◄─┘ (failback)

The replica is made by lifecycle.py (pg_basebackup -R on first start, then started as a hot standby); this package
reports it and changes roles:

    GET  /health, /_replication/status   role and lag as Postgres reports them (lag.py)
    POST /_admin/promote                 (service role) pg_promote(wait => true); a second call answers the same
    POST /_admin/demote                  (service role) follow the new primary (failover.py), requests held meanwhile
                                         (gate.py)

Whether this region is a standby comes from the database (standby.py), never from a flag; write forwarding
(forwarding.py) asks it and forwards to `primary_url(app)`. Writes a primary acknowledged but never shipped before
it failed are the RPO a drill measures: pg_rewind discards them on failback.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web

from harness.errors import TargetUnreachable
from harness.refstack.region.replication import failover, hooks, lag
from harness.refstack.region.replication.gate import Gate
from harness.refstack.region.replication.hooks import on_role_change
from harness.refstack.region.replication.standby import StandbyCheck
from harness.refstack.region.state import CONFIG, DB, require_service

__all__ = ["is_standby", "on_role_change", "primary_url", "setup", "status"]

log = logging.getLogger(__name__)


@dataclass
class ReplicationState:
    standby: StandbyCheck
    primary_url: str | None
    """The region a standby follows (its writes are forwarded there); None on a primary."""
    gate: Gate = field(default_factory=Gate)
    role_change: asyncio.Lock = field(default_factory=asyncio.Lock)


STATE = web.AppKey("replication", ReplicationState)


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


async def is_standby(app: web.Application) -> bool:
    return await app[STATE].standby.is_standby(app[DB])


def primary_url(app: web.Application) -> str | None:
    return app[STATE].primary_url


async def status(app: web.Application) -> dict[str, Any]:
    """Role and lag for /health and /_replication/status; `database_reachable` false while Postgres cannot answer."""
    state = app[STATE]
    try:
        if not state.gate.is_open:
            raise ConnectionError("restarting as a standby")
        measured = await lag.measure(app[DB])
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return {"role": "replica" if state.standby.last_known else "primary", "database_reachable": False,
                "database_error": str(exc)}  # fmt: skip
    state.standby.set(measured["role"] == "replica")
    if measured["role"] == "replica":
        measured["primary_url"] = state.primary_url
    return {**measured, "database_reachable": True}


async def _status(request: web.Request) -> web.Response:
    body = await status(request.app)
    return web.json_response(body, status=200 if body["database_reachable"] else 503)


async def _promote(request: web.Request) -> web.Response:
    require_service(request)
    app = request.app
    state = app[STATE]
    async with state.role_change:
        try:
            promoted = await failover.promote(app[DB])
        except failover.PromotionTimeout as exc:
            return _json_error(504, str(exc))
        except asyncpg.PostgresError as exc:
            return _json_error(503, f"promotion failed: {exc}")
        state.standby.set(False)
        state.primary_url = None
    if promoted:
        log.warning("region %s promoted to primary", app[CONFIG].region)
        await hooks.notify(app, "promoted")
    return web.json_response({"role": "primary", "region": app[CONFIG].region})


async def _demote(request: web.Request) -> web.Response:
    require_service(request)
    try:
        body = await request.json()
        new_primary = str(body["primary_url"]).rstrip("/")
    except (ValueError, KeyError, TypeError):
        return _json_error(400, 'body must be {"primary_url": "http://…"}')
    if not new_primary.startswith(("http://", "https://")):
        return _json_error(400, "primary_url must be an http(s) URL")
    app = request.app
    state = app[STATE]
    async with state.role_change:
        if state.primary_url == new_primary and await is_standby(app):
            method: str = "already_following"
        else:
            try:
                method = await failover.demote(app, state.gate, new_primary)
            except failover.FailoverRefused as exc:
                return _json_error(409, str(exc))
            except TargetUnreachable as exc:
                return _json_error(502, str(exc))
            state.standby.set(True)
            state.primary_url = new_primary
    return web.json_response(
        {"role": "replica", "region": app[CONFIG].region, "primary_url": new_primary, "method": method}
    )


def setup(app: web.Application) -> None:
    config = app[CONFIG]
    following = config.primary_url.rstrip("/") if config.role == "replica" and config.primary_url else None
    state = ReplicationState(standby=StandbyCheck(assume_standby=config.role == "replica"), primary_url=following)
    app[STATE] = state
    app.middlewares.append(state.gate.middleware())
    app.router.add_get("/_replication/status", _status)
    app.router.add_post("/_admin/promote", _promote)
    app.router.add_post("/_admin/demote", _demote)
