"""Promotion and failback with PostgreSQL's own machinery.

    promote   pg_promote(wait => true): the standby finishes recovery and accepts writes on the connections it has
    demote    an old primary follows the new one:
                new primary's address (its /_admin/postgres) ─► its physical slot for us (created if missing)
                ─► close the gate, drain ─► stop ─► follow_stopped: pg_rewind from the new primary (a fresh
                pg_basebackup when rewind is impossible) ─► standby.signal + primary_conninfo + slot
                ─► start ─► reconnect app[DB]'s pools ─► adopt (the new role) ─► open the gate

`stop` and `follow_stopped` run with the gate already closed, so a planned switchover (switchover.py) closes it once
around its whole sequence.

app[DB] keeps its identity across a demotion (the application is frozen once it serves, and every module holds
`request.app[DB]`): its `api` and `admin` pools are replaced by pools on the restarted server, one attribute
assignment each, while the gate holds new requests. Requests still running on the old pools after DRAIN_S see
their connection closed (an error answer, never a wrong one); a module holding a connection of its own (a LISTEN,
a decoding loop) hears "stopping" and "restarted" through hooks.on_role_change and takes a new one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
from collections.abc import Callable
from typing import Literal

import asyncpg
from aiohttp import web

from harness.errors import TargetUnreachable
from harness.refstack.postgres.cluster import SUPERUSER, Cluster
from harness.refstack.region import lifecycle
from harness.refstack.region.config import RegionConfig
from harness.refstack.region.database import Database
from harness.refstack.region.replication import hooks
from harness.refstack.region.replication.gate import Gate
from harness.refstack.region.state import CLUSTER, CONFIG, DB

log = logging.getLogger(__name__)

PROMOTE_WAIT_S = 60
Rejoin = Literal["rewind", "base_backup"]


class PromotionTimeout(Exception):
    """pg_promote(wait => true) gave up waiting; the promotion may still complete."""


class FailoverRefused(Exception):
    """The request cannot be carried out as asked (the message says why); nothing was changed."""


async def promote(db: Database) -> bool:
    """Finish recovery; True when this call promoted, False when the server was a primary already."""
    if not await db.admin.fetchval("select pg_is_in_recovery()"):
        return False
    if not await db.admin.fetchval("select pg_promote(true, $1)", PROMOTE_WAIT_S):
        raise PromotionTimeout(f"PostgreSQL did not finish promotion within {PROMOTE_WAIT_S} s")
    return True


async def new_primary_address(config: RegionConfig, primary_url: str) -> tuple[str, int]:
    """Where the PostgreSQL of the region at primary_url listens (asked of its /_admin/postgres)."""
    return await lifecycle.primary_postgres_address(
        dataclasses.replace(config, primary_url=primary_url, primary_postgres=None)
    )


async def prepare_new_primary(host: str, port: int, slot: str) -> None:
    """Check the new primary really is one, and give it the physical slot that will keep WAL for us."""
    try:
        conn = await asyncpg.connect(host=host, port=port, user=SUPERUSER, database="postgres", timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise TargetUnreachable(f"the new primary's PostgreSQL at {host}:{port} did not answer: {exc}") from None
    try:
        if await conn.fetchval("select pg_is_in_recovery()"):
            raise FailoverRefused(f"PostgreSQL at {host}:{port} is a standby: promote it before demoting this region")
        await conn.execute(
            "select pg_create_physical_replication_slot($1, true)"
            " where not exists (select from pg_replication_slots where slot_name = $1)",
            slot,
        )
    finally:
        await conn.close()


def _rejoin(cluster: Cluster, host: str, port: int, slot: str) -> Rejoin:
    """On the stopped cluster: rewind (or copy afresh) onto the new primary's timeline, then follow it.

    A standby is rewound too: if it replayed its old primary's WAL past the point where the new primary forked
    off, it could not follow the new timeline (pg_rewind says "no rewind required" when it did not)."""
    method: Rejoin = "rewind"
    try:
        cluster.rewind(host, port)
    except TargetUnreachable as exc:
        log.warning("pg_rewind impossible (%s): taking a fresh base backup from %s:%d", exc, host, port)
        shutil.rmtree(cluster.data_dir)
        cluster.base_backup(host, port, slot)
        method = "base_backup"
    cluster.follow(host, port, slot)
    return method


async def _drop_stale_slots(db: Database) -> None:
    """Physical slots the old primary kept for its own replica are dead weight on a standby (they pin WAL)."""
    try:
        await db.admin.execute(
            "select pg_drop_replication_slot(slot_name) from pg_replication_slots"
            " where slot_type = 'physical' and not active"
        )
    except asyncpg.PostgresError as exc:
        log.warning("could not drop stale physical slots after failback: %s", exc)


async def _reconnect(db: Database, cluster: Cluster, config: RegionConfig) -> None:
    fresh = await Database.open(
        cluster.host, cluster.port, pool_size=config.pool_size, statement_timeout_ms=config.statement_timeout_ms
    )
    db.api, db.admin = fresh.api, fresh.admin


async def stop(app: web.Application) -> None:
    """With the gate closed: let go of every connection and stop PostgreSQL (a fast shutdown, which also sends the
    last WAL, the shutdown checkpoint included, to the standbys still connected)."""
    db, cluster = app[DB], app[CLUSTER]
    await hooks.notify(app, "stopping")
    # Terminated, not closed: a close would wait for connections other modules hold for good (LISTEN, WAL
    # decoding) and never return; and terminated before the stop, so they do not reconnect to a dying server.
    db.api.terminate()
    db.admin.terminate()
    await asyncio.to_thread(cluster.stop)


async def restart(app: web.Application) -> None:
    """With the gate closed and PostgreSQL stopped: start it again unchanged (a switchover that could not go on)."""
    config, cluster, db = app[CONFIG], app[CLUSTER], app[DB]
    await asyncio.to_thread(cluster.start)
    await _reconnect(db, cluster, config)
    await hooks.notify(app, "restarted")


async def follow_stopped(app: web.Application, host: str, port: int, slot: str) -> Rejoin:
    """With the gate closed and PostgreSQL stopped: rejoin the new primary at host:port, start, reconnect."""
    config, cluster, db = app[CONFIG], app[CLUSTER], app[DB]
    try:
        method = await asyncio.to_thread(_rejoin, cluster, host, port, slot)
        cluster.configure(lifecycle.cluster_settings(dataclasses.replace(config, role="replica")))
    finally:  # even when rejoining failed, serve again on whatever the data directory holds
        await asyncio.to_thread(cluster.start)
        await _reconnect(db, cluster, config)
    await _drop_stale_slots(db)
    await hooks.notify(app, "restarted")
    return method


async def demote(app: web.Application, gate: Gate, primary_url: str, adopt: Callable[[], None]) -> Rejoin:
    """Make this region a standby of the region at primary_url (see the module docstring). `adopt` records the new
    role while the gate is still closed, so the requests it held are served as a standby's."""
    config, cluster = app[CONFIG], app[CLUSTER]
    host, port = await new_primary_address(config, primary_url)
    if (host, port) == (cluster.host, cluster.port):
        raise FailoverRefused(f"{primary_url} is this region itself: give the new primary's URL")
    slot = lifecycle.replication_slot(config.region)
    await prepare_new_primary(host, port, slot)
    async with gate.closed():
        await stop(app)
        method = await follow_stopped(app, host, port, slot)
        adopt()
    log.warning("region %s now follows %s (%s:%d) after %s", config.region, primary_url, host, port, method)
    return method
