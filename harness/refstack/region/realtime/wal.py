"""The change feed: one task per region that reads Realtime's slot and hands each batch to the hub.

    start  ─► catalog (published tables) ─► slot.create (on a standby: nudging the primary)
    loop   ─► slot.poll ─► pgoutput.parse ─► changes.Decoder ─► hub.publish (visibility as each subscriber)
           ─► full batch: poll again at once; some rows: again after MIN_IDLE_S; none: back off to MAX_IDLE_S;
              no channel listening: every UNHEARD_POLL_S
    error  ─► log what may be missed, wait, make the slot again (the database restarted, was rewound, or the
              pools were replaced), carry on
    stop   ─► cancel the task, drop the slot (on_shutdown: the pools close later, in on_cleanup)

Latency: a change waits at most MAX_IDLE_S for the next poll when the region was idle, less under load.
Promotion: the slot was made on this server, so it keeps decoding when a standby is promoted (PostgreSQL keeps
local slots; tested); nothing is missed. A restart, pg_rewind (failback) or a lost connection in the middle of a
poll makes the slot again: changes committed between the last delivered one and the new slot's start are not
delivered, and the log says so with both LSNs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import time

from aiohttp import web

from harness.refstack.region.database import Database
from harness.refstack.region.realtime import catalog, pgoutput, slot, visibility
from harness.refstack.region.realtime.changes import Change, Decoder
from harness.refstack.region.realtime.hub import Hub
from harness.refstack.region.state import CONFIG, DB

log = logging.getLogger(__name__)

BATCH = 1000
"""Messages per poll (Begin, Relation and Commit count too); a full batch means more is waiting."""
MIN_IDLE_S = 0.002
MAX_IDLE_S = 0.016
"""Poll cadence when nothing came back: doubling from MIN_IDLE_S up to this (the idle delivery latency bound)."""
UNHEARD_POLL_S = 0.25
"""Pause between polls while no channel listens to postgres_changes (a replica nobody reads from, say): the slot
is still read, so its WAL does not pile up, but a poll costs a decoding start-up that nobody benefits from. A
channel joining meanwhile gets its first change at most this much later (it gets nothing committed before it
joined anyway)."""
RETRY_S = 0.5
"""Wait before making the slot again after an error."""
ADVANCE_EVERY_S = 0.25
ADVANCE_AFTER_BYTES = 64 * 1024
"""Every ADVANCE_EVERY_S, a primary whose slot would re-read more WAL than this logs a running-transactions
record, so the WAL each poll decodes again stays small under load (a record is ~50 bytes of WAL)."""
LAG_WARN_S = 2.0
"""Decoded changes older than this mean the feed cannot keep up: warn (at most every LAG_WARN_EVERY_S)."""
LAG_WARN_EVERY_S = 10.0
STARTUP_TIMEOUT_S = 15.0
"""Start-up waits this long for the slot (a standby whose primary is away); after that it is made in the
background and the region serves meanwhile."""
_ADVANCE_SQL = (
    "select pg_log_standby_snapshot() from pg_replication_slots"
    " where slot_name = $1"
    " and case when pg_is_in_recovery() then false else pg_current_wal_lsn() - restart_lsn > $2::bigint end"
)


class ChangeFeed:
    def __init__(self, app: web.Application, hub: Hub) -> None:
        self.app = app
        self.hub = hub
        self.slot = slot.slot_name(app[CONFIG].region)
        self.decoder = Decoder(hub.catalog)
        self.delivered_lsn: int | None = None
        """The LSN of the last message read from the slot (for the log when a gap cannot be avoided)."""
        self.changes_seen = 0
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._last_lag_warning = 0.0
        self._last_advance = 0.0
        self._opened = False
        """The slot was made once: making it again means a gap, which is logged."""

    @property
    def db(self) -> Database:
        return self.app[DB]  # read each time: a failback replaces the Database while the region runs

    # -- lifecycle ------------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"realtime-feed-{self.slot}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._ready.wait()), STARTUP_TIMEOUT_S)
        if not self._ready.is_set():
            log.warning("realtime: slot %s not ready after %.0f s; making it in the background", self.slot,
                        STARTUP_TIMEOUT_S)  # fmt: skip

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await asyncio.wait_for(slot.drop(self.db.admin, self.slot), 5)
        except Exception as exc:  # the database is already gone: nothing to clean
            log.debug("realtime: slot %s not dropped at shutdown: %r", self.slot, exc)

    # -- the loop -------------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._open()
                failures = 0
                await self._poll_forever()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The first failure says what is lost; retries while the database stays away are logged quietly.
                failures += 1
                log.log(
                    logging.WARNING if failures == 1 else logging.DEBUG,
                    "realtime: decoding slot %s stopped (%r); making it again every %.1f s: changes committed after "
                    "LSN %s until then are not delivered", self.slot, exc, RETRY_S, _lsn(self.delivered_lsn),
                )  # fmt: skip
                self._ready.clear()
                await asyncio.sleep(RETRY_S)

    async def _open(self) -> None:
        pool = self.db.admin
        async with pool.acquire() as conn:
            self._set_catalog(await catalog.load(conn))
        start_lsn = await slot.create(pool, self.slot)
        if self._opened:
            log.warning("realtime: slot %s made again at LSN %s (last read %s)", self.slot, _lsn(start_lsn),
                        _lsn(self.delivered_lsn))  # fmt: skip
        self.decoder.relations.clear()
        self._opened = True
        self._ready.set()
        log.info("realtime: decoding %s from slot %s at LSN %s", catalog.PUBLICATION, self.slot, _lsn(start_lsn))

    async def _poll_forever(self) -> None:
        idle_s = MIN_IDLE_S
        while True:
            db = self.db
            rows = await slot.poll(db.admin, self.slot, BATCH)
            if rows:
                self.delivered_lsn = int(rows[-1]["lsn"])
                changes = await self._decode([bytes(r["data"]) for r in rows])
                if changes:
                    self.changes_seen += len(changes)
                    decoded_s = time.time()  # the feed's stamp on load-test frames (the commit → feed leg)
                    await self.hub.publish(changes, functools.partial(visibility.visible, db.admin), decoded_s)
                    self._watch_lag(changes[-1].commit_time)
            await self._advance(db)
            if len(rows) >= BATCH:
                continue
            if not self.hub.listening():
                await asyncio.sleep(UNHEARD_POLL_S)
                continue
            await asyncio.sleep(MIN_IDLE_S if rows else idle_s)
            idle_s = MIN_IDLE_S if rows else min(idle_s * 2, MAX_IDLE_S)

    async def _decode(self, datas: list[bytes]) -> list[Change]:
        messages = [pgoutput.parse(d) for d in datas]
        if any(isinstance(m, pgoutput.Relation) and self._unknown(m) for m in messages):
            async with self.db.admin.acquire() as conn:  # a migration added a table, column or type
                self._set_catalog(await catalog.load(conn))
        changes = []
        for message in messages:
            change = self.decoder.feed(message)
            if change is not None:
                changes.append(change)
        return changes

    async def _advance(self, db: Database) -> None:
        """Let the slot's restart point move. A slot read from SQL restarts every poll at its restart_lsn, which
        only moves past a running-transactions record (the background writer logs one every 15 s at best): in
        between, each poll decodes again all the WAL since the last one, and gets slower the busier the region.
        `pg_log_standby_snapshot()` logs one now. A standby cannot write WAL; its primary's records reach it."""
        now = time.monotonic()
        if now - self._last_advance < ADVANCE_EVERY_S:
            return
        self._last_advance = now
        await db.admin.execute(_ADVANCE_SQL, self.slot, ADVANCE_AFTER_BYTES)

    def _unknown(self, relation: pgoutput.Relation) -> bool:
        known = self.hub.catalog.table(relation.schema, relation.name)
        if known is None or [c.name for c in known.columns] != [c.name for c in relation.columns]:
            return True
        return any(c.type_oid not in self.hub.catalog.type_names for c in relation.columns)

    def _set_catalog(self, loaded: catalog.Catalog) -> None:
        self.hub.catalog = loaded
        self.decoder.set_catalog(loaded)

    def _watch_lag(self, commit_time: dt.datetime) -> None:
        lag_s = (dt.datetime.now(dt.UTC) - commit_time).total_seconds()
        now = time.monotonic()
        if lag_s > LAG_WARN_S and now - self._last_lag_warning > LAG_WARN_EVERY_S:
            self._last_lag_warning = now
            log.warning(
                "realtime: slot %s is %.1f s behind the WAL: subscribers get changes late (none is dropped; "
                "the slot keeps them)", self.slot, lag_s,
            )  # fmt: skip


def _lsn(value: int | None) -> str:
    if value is None:
        return "(none yet)"
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"
