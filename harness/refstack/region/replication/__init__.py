"""Japan as a physical streaming replica of Singapore: PostgreSQL's own replication, promotion and failback.

    Singapore primary ──WAL (physical slot replica_ap_northeast_1)──► Japan hot standby (reads; writes: 25006)
                                                                       │ POST /_admin/promote: pg_promote()
    old primary ◄── POST /_admin/demote {"primary_url"}: pg_rewind + follow ◄─┘ (failback)

    planned:  primary ── POST /_admin/switchover {"to": standby} ──► gate closed ─► standby replays our last LSN
              ─► we stop ─► it is promoted ─► we follow it (pg_rewind) ─► gate open: we forward writes to it

The replica is made by lifecycle.py (pg_basebackup -R on first start, then started as a hot standby); this package
reports it and changes roles:

    GET  /health, /_replication/status   role and lag as Postgres reports them (lag.py)
    POST /_admin/promote                 (service role) pg_promote(wait => true); a second call answers the same
    POST /_admin/demote                  (service role) follow the new primary (failover.py), requests held meanwhile
                                         (gate.py)
    POST /_admin/switchover              (service role, on the primary) hand the role to our standby with no
                                         acknowledged write lost (switchover.py); a second call answers the same

Whether this region is a standby comes from the database (standby.py), never from a flag; write forwarding
(forwarding.py) asks it and forwards to `primary_url(app)` when `forwards_writes(app)`: the configured
forward_writes, turned on by a switchover (the old primary takes the standby's place). The URL a standby follows is
recorded at each demotion and switchover (following.py), so a restart without --primary-url knows it. Writes a
primary acknowledged but never shipped before it failed are the RPO a drill measures: pg_rewind discards them on
failback; a planned switchover loses none.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from harness.errors import TargetUnreachable
from harness.model import strict_json
from harness.refstack.region import following
from harness.refstack.region.replication import failover, hooks, lag, switchover
from harness.refstack.region.replication.gate import Gate
from harness.refstack.region.replication.hooks import on_role_change
from harness.refstack.region.replication.standby import StandbyCheck
from harness.refstack.region.state import CLUSTER, CONFIG, DB, require_service

__all__ = ["forwards_writes", "is_standby", "on_role_change", "primary_url", "setup", "status"]

log = logging.getLogger(__name__)


@dataclass
class ReplicationState:
    standby: StandbyCheck
    primary_url: str | None
    """The region a standby follows (its writes are forwarded there); None on a primary."""
    forward_writes: bool
    """Whether a standby forwards client writes to primary_url (config.forward_writes; a switchover turns it on)."""
    gate: Gate = field(default_factory=Gate)
    role_change: asyncio.Lock = field(default_factory=asyncio.Lock)


STATE = web.AppKey("replication", ReplicationState)


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


def _region_url(body: Any, name: str) -> str:
    """An http(s) URL from the JSON body's `name`, without a trailing slash; HTTPBadRequest otherwise."""
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise web.HTTPBadRequest(
            text=json.dumps({"message": f'body must be {{"{name}": "http://…"}}: {name} must be an http(s) URL'}),
            content_type="application/json",
        )
    return value.rstrip("/")


async def _json_body(request: web.Request) -> Any:
    try:
        return strict_json.loads(await request.read())
    except strict_json.JsonBodyError as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"message": f"the body must be JSON: {exc.message}"}), content_type="application/json"
        ) from None


async def is_standby(app: web.Application) -> bool:
    return await app[STATE].standby.is_standby(app[DB])


def primary_url(app: web.Application) -> str | None:
    return app[STATE].primary_url


def forwards_writes(app: web.Application) -> bool:
    return app[STATE].forward_writes


def _region_dir(app: web.Application) -> Path:
    return app[CLUSTER].data_dir.parent


def _follow(app: web.Application, new_primary: str, *, forward_writes: bool) -> None:
    """Record that this region is now a standby of new_primary, in memory and beside its PostgreSQL."""
    state = app[STATE]
    state.standby.set(True)
    state.primary_url = new_primary
    state.forward_writes = forward_writes
    try:
        following.record(_region_dir(app), following.Following(new_primary, forward_writes))
    except OSError as exc:
        log.warning("could not record the primary this region follows (a restart will not know it): %s", exc)


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
        following.forget(_region_dir(app))
    if promoted:
        log.warning("region %s promoted to primary", app[CONFIG].region)
        await hooks.notify(app, "promoted")
    return web.json_response({"role": "primary", "region": app[CONFIG].region})


async def _demote(request: web.Request) -> web.Response:
    require_service(request)
    new_primary = _region_url(await _json_body(request), "primary_url")
    app = request.app
    state = app[STATE]
    async with state.role_change:
        if state.primary_url == new_primary and await is_standby(app):
            method: str = "already_following"
        else:
            try:
                adopt = functools.partial(_follow, app, new_primary, forward_writes=state.forward_writes)
                method = await failover.demote(app, state.gate, new_primary, adopt)
            except failover.FailoverRefused as exc:
                return _json_error(409, str(exc))
            except TargetUnreachable as exc:
                return _json_error(502, str(exc))
    return web.json_response(
        {"role": "replica", "region": app[CONFIG].region, "primary_url": new_primary, "method": method}
    )


async def _switchover(request: web.Request) -> web.Response:
    require_service(request)
    body = await _json_body(request)
    target = _region_url(body, "to")
    timeout_s, longest = body.get("timeout_s", switchover.DEFAULT_TIMEOUT_S), switchover.MAX_TIMEOUT_S
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not 0 < timeout_s <= longest:
        return _json_error(400, f"timeout_s must be a number of seconds in (0, {longest:g}]")
    app = request.app
    state = app[STATE]
    region = app[CONFIG].region
    async with state.role_change:
        if await is_standby(app):
            if state.primary_url == target:
                return web.json_response(
                    {"role": "replica", "region": region, "primary_url": target, "already_switched": True}
                )
            return _json_error(
                409, f"this region is a standby (of {state.primary_url}): call the switchover on its primary"
            )
        credentials = {name: request.headers[name] for name in ("Authorization", "apikey") if name in request.headers}
        try:
            adopt = functools.partial(_follow, app, target, forward_writes=True)
            switched = await switchover.switch_over(app, state.gate, target, float(timeout_s), credentials, adopt)
        except failover.FailoverRefused as exc:
            return _json_error(409, str(exc))
        except switchover.SwitchoverTimeout as exc:
            return _json_error(504, str(exc))
        except TargetUnreachable as exc:
            return _json_error(502, str(exc))
    log.warning("region %s is now a standby of %s (planned switchover)", region, target)
    answer = {"role": "replica", "region": region, "primary_url": target, "switchover_lsn": switched.switchover_lsn,
              "caught_up_s": switched.caught_up_s, "method": switched.method}  # fmt: skip
    return web.json_response(answer)


async def _adopt_recorded_primary(app: web.Application) -> None:
    """A standby started without --primary-url follows the URL recorded at its demotion (following.py)."""
    state = app[STATE]
    if state.primary_url is not None or not app[CLUSTER].is_standby:
        return
    learned = following.recorded(_region_dir(app))
    if learned is None:
        log.warning("region %s is a standby that does not know its primary's URL: writes are refused",
                    app[CONFIG].region)  # fmt: skip
        return
    state.standby.set(True)
    state.primary_url = learned.primary_url
    state.forward_writes = state.forward_writes or learned.forward_writes
    log.warning("region %s: a standby of %s (recorded in %s)", app[CONFIG].region, learned.primary_url,
                following.path(_region_dir(app)))  # fmt: skip


def setup(app: web.Application) -> None:
    config = app[CONFIG]
    followed = config.primary_url.rstrip("/") if config.role == "replica" and config.primary_url else None
    state = ReplicationState(standby=StandbyCheck(assume_standby=config.role == "replica"), primary_url=followed,
                             forward_writes=config.forward_writes)  # fmt: skip
    app[STATE] = state
    app.middlewares.append(state.gate.middleware())
    app.on_startup.append(_adopt_recorded_primary)  # after lifecycle.start (appended first): the cluster is there
    app.router.add_get("/_replication/status", _status)
    app.router.add_post("/_admin/promote", _promote)
    app.router.add_post("/_admin/demote", _demote)
    app.router.add_post("/_admin/switchover", _switchover)
