"""Realtime's logical replication slot: made, read and dropped from SQL over the admin pool.

Plugin: `pgoutput`, PostgreSQL's built-in logical replication output (the one Supabase's Realtime and every
subscriber use): always installed, filtered by publication (`supabase_realtime`, which the app's migration fills),
a compact binary format with typed columns and the commit timestamp. asyncpg cannot speak the streaming
replication protocol, so the slot is read with `pg_logical_slot_get_binary_changes`, which consumes what it
returns: polling from SQL is the cost of that choice (wal.py says how often).

Permanent, not temporary: a temporary slot belongs to the session that made it, so it would pin one connection
and die with it (a dropped connection would lose the changes meanwhile). A permanent slot is read from any
pooled connection, survives reconnects and a promotion of the standby it was made on, and is named per region;
it is dropped at clean shutdown and made afresh at start, since changes committed while nobody was subscribed
are not wanted.

On a hot standby (PostgreSQL 16+ decodes there too) creating a slot waits for a running-transactions record from
the primary. `pg_log_standby_snapshot()` on the primary writes one at once; the standby knows where its primary
is (pg_stat_wal_receiver), so `create` asks it every half second while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from harness.refstack.postgres.cluster import SUPERUSER
from harness.refstack.region.realtime.catalog import PUBLICATION

log = logging.getLogger(__name__)

PLUGIN = "pgoutput"
NUDGE_INTERVAL_S = 0.5
_POLL_SQL = (
    "select lsn, data from pg_logical_slot_get_binary_changes($1, null, $2,"
    f" 'proto_version', '1', 'publication_names', '{PUBLICATION}')"
)


def slot_name(region: str) -> str:
    """`realtime_ap_southeast_1`: one per region (each region has its own cluster)."""
    return "realtime_" + region.replace("-", "_")


async def create(pool: asyncpg.Pool, name: str) -> int:
    """Drop a leftover slot of that name (a crash), make it anew; return the LSN it starts decoding from."""
    await drop(pool, name)
    standby = bool(await pool.fetchval("select pg_is_in_recovery()"))
    creating = asyncio.ensure_future(
        pool.fetchval("select lsn from pg_create_logical_replication_slot($1, $2)", name, PLUGIN)
    )
    try:
        while standby and not creating.done():
            await asyncio.wait({creating}, timeout=NUDGE_INTERVAL_S)
            if not creating.done():
                await _nudge_primary(pool)
        return int(await creating)
    finally:
        if not creating.done():
            creating.cancel()
            with contextlib.suppress(BaseException):
                await creating


async def drop(pool: asyncpg.Pool, name: str) -> None:
    await pool.execute(
        "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1", name
    )


async def poll(pool: asyncpg.Pool, name: str, batch: int) -> list[asyncpg.Record]:
    """Up to about `batch` messages (whole transactions: the limit is checked at commits), consumed."""
    return list(await pool.fetch(_POLL_SQL, name, batch))


async def _nudge_primary(pool: asyncpg.Pool) -> None:
    """Ask the primary this standby streams from to log a running-transactions record now."""
    row = await pool.fetchrow("select sender_host, sender_port from pg_stat_wal_receiver")
    if row is None or row["sender_host"] is None:
        log.info("realtime: the standby is not streaming yet; its slot waits for the primary")
        return
    try:
        conn = await asyncpg.connect(
            host=row["sender_host"], port=row["sender_port"], user=SUPERUSER, database="postgres", timeout=2
        )
        try:
            await conn.execute("select pg_log_standby_snapshot()")
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        log.info("realtime: could not ask the primary for a snapshot record (%r); waiting for its own", exc)
