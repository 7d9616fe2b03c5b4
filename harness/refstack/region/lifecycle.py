"""Bring a region's PostgreSQL up before the routes serve, and down after they stop.

    primary:  Cluster.init (reused when the data dir has one) ─► start ─► bootstrap (Supabase's contract, once)
              ─► the migrations folder (each file once) ─► Database pools
    replica:  pg_basebackup -R from the primary (first start only; address from --primary-postgres, else asked
              of the primary region's /_admin/postgres) ─► start as a hot standby ─► Database pools
    standby:  a data dir in recovery (a replica, or an old primary demoted) ─► its primary's PostgreSQL address
              asked afresh of --primary-url, else of the URL recorded at the demotion (following.py) ─► start

A failing migration stops start-up with its file, line and message (MigrationError, exit 2), and the cluster we
started is stopped again: never a half-started stack.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web

from harness.errors import TargetUnreachable
from harness.procs import leftovers
from harness.refstack.postgres import migrations
from harness.refstack.postgres.cluster import Cluster
from harness.refstack.region import following
from harness.refstack.region.config import RegionConfig
from harness.refstack.region.database import Database
from harness.refstack.region.state import CLUSTER, CONFIG, DB, require_service

log = logging.getLogger(__name__)

POSTGRES_DIR = "postgres"
"""The cluster's directory under the region's --data-dir."""
POOL_CLOSE_TIMEOUT_S = 10.0
SCRATCH = web.AppKey("scratch_dir", Path)
"""A region without --data-dir (tests) keeps its cluster in a temporary directory, removed at stop."""


def replication_slot(region: str) -> str:
    """The physical slot on the primary that keeps WAL for the replica of `region`."""
    return "replica_" + region.replace("-", "_")


def cluster_settings(config: RegionConfig) -> dict[str, str]:
    settings: dict[str, str] = {}
    if config.role == "replica" and config.replication_lag_ms > 0:
        settings["recovery_min_apply_delay"] = f"'{int(config.replication_lag_ms)}ms'"
    if config.synchronous_replica:
        settings["synchronous_standby_names"] = "'*'"
    return settings


async def primary_postgres_address(config: RegionConfig) -> tuple[str, int]:
    """host and port of the primary's PostgreSQL: configured, or asked of the primary region."""
    if config.primary_postgres:
        host, _, port = config.primary_postgres.rpartition(":")
        return host or "127.0.0.1", int(port)
    if not config.primary_url:
        raise TargetUnreachable(
            f"region {config.region} is a replica without a primary: give --primary-url (or primary_postgres)"
        )
    url = config.primary_url.rstrip("/") + "/_admin/postgres"
    headers = {"apikey": config.service_role_key, "Authorization": f"Bearer {config.service_role_key}"}
    try:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url, headers=headers) as response:
            response.raise_for_status()
            body = await response.json()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TargetUnreachable(
            f"replica {config.region} cannot copy its primary's database: {url} did not answer ({exc}); "
            "start the primary first"
        ) from None
    return str(body["host"]), int(body["port"])


async def start(app: web.Application) -> None:
    config = app[CONFIG]
    if config.data_dir is None:
        scratch = leftovers.temporary_directory(f"harness-{config.region}-")
        app[SCRATCH] = scratch
        data_dir = scratch
    else:
        data_dir = config.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(data_dir / POSTGRES_DIR, port=config.postgres_port, host=config.postgres_host)
    app[CLUSTER] = cluster
    try:
        if config.role == "replica" and not cluster.initialised:
            host, port = await primary_postgres_address(config)
            await asyncio.to_thread(cluster.base_backup, host, port, replication_slot(config.region))
            cluster.follow(host, port, replication_slot(config.region))  # named after its slot in pg_stat_replication
        else:
            await asyncio.to_thread(cluster.init)
            if cluster.is_standby:
                await _refresh_primary_address(cluster, _with_recorded_primary(config, data_dir))
        cluster.configure(cluster_settings(config))
        await asyncio.to_thread(cluster.start)
        await _migrate_unless_standby(cluster, config)
        app[DB] = await Database.open(
            cluster.host, cluster.port, pool_size=config.pool_size, statement_timeout_ms=config.statement_timeout_ms
        )
    except BaseException:
        await asyncio.to_thread(cluster.stop)
        _remove_scratch(app)
        raise
    log.info("region %s: PostgreSQL on %s:%d (%s)", config.region, cluster.host, cluster.port, cluster.data_dir)


def _with_recorded_primary(config: RegionConfig, region_dir: Path) -> RegionConfig:
    """A standby started without --primary-url (an old primary demoted, restarted with its primary's options)
    follows the region it was last told to follow (following.json)."""
    if config.primary_url or config.primary_postgres:
        return config
    learned = following.recorded(region_dir)
    return config if learned is None else dataclasses.replace(config, primary_url=learned.primary_url)


async def _refresh_primary_address(cluster: Cluster, config: RegionConfig) -> None:
    """A standby restarted on its data dir follows where its primary's PostgreSQL listens now (its port is picked
    afresh at each start); when the primary cannot say, the standby keeps the old address and serves reads."""
    try:
        host, port = await primary_postgres_address(config)
    except TargetUnreachable as exc:
        log.warning("region %s: standby keeps its recorded primary address: %s", config.region, exc)
        return
    cluster.follow(host, port, replication_slot(config.region))


async def _migrate_unless_standby(cluster: Cluster, config: RegionConfig) -> None:
    """Bootstrap and migrate a primary; a standby has its primary's schema already (and cannot write)."""
    conn = await asyncpg.connect(cluster.dsn())
    try:
        if await conn.fetchval("select pg_is_in_recovery()"):
            return
        # No replica exists yet on a first start: with synchronous_replica these commits would wait for one forever.
        await conn.execute("set synchronous_commit = local")
        await migrations.bootstrap(conn)
        applied = await migrations.apply(conn, config.migrations_dir or migrations.default_folder())
        if applied:
            log.info("region %s: applied migrations %s", config.region, ", ".join(applied))
    finally:
        await conn.close()


async def stop(app: web.Application) -> None:
    """Pools, then the server, then a temporary data directory: each step runs even when an earlier one fails (a
    pool a failback already replaced, a server that crashed), so nothing is left running or on disk."""
    try:
        if DB in app:
            await asyncio.wait_for(app[DB].close(), POOL_CLOSE_TIMEOUT_S)
    except Exception:
        log.warning("region %s: closing the database pools failed", app[CONFIG].region, exc_info=True)
    finally:
        try:
            if CLUSTER in app:
                await asyncio.to_thread(app[CLUSTER].stop)
        finally:
            _remove_scratch(app)


def _remove_scratch(app: web.Application) -> None:
    if SCRATCH in app:
        leftovers.remove_temporary_directory(app[SCRATCH])


async def postgres_address(request: web.Request) -> web.Response:
    """`GET /_admin/postgres` (service role): where this region's PostgreSQL listens, for a replica's base backup."""
    require_service(request)
    cluster = request.app[CLUSTER]
    return web.json_response({"host": cluster.host, "port": cluster.port})
