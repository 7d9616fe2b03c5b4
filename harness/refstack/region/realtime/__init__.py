"""Supabase Realtime for the region server: Phoenix channels vsn 1.0.0 and 2.0.0 (docs/protocols.md §4).

    frames.py      inbound frames (vsn 1.0.0 objects, 2.0.0 arrays and binary broadcasts), strictly parsed
    codec.py       the two serializers `?vsn=` picks between: replies, channel pushes, fastlane broadcasts
    tokens.py      connect and channel tokens: role and exp required, Realtime's error texts
    catalog.py     the tables of publication supabase_realtime, their columns, types and keys
    filters.py     postgres_changes filters (`col=eq.value`, neq, lt, lte, gt, gte, in)
    channel.py     join config, bindings with ids, one joined channel
    peer.py        what channels and the hub need of a socket (a Protocol that connection.py satisfies)
    presence.py    presence metas per topic
    hub.py         all connections and channels, indexes, change fan-out, broadcast, presence diffs
    connection.py  one socket: read loop, channel protocol, bounded outbox and writer
    endpoint.py    GET /realtime/v1/websocket and the REST broadcast API

postgres_changes come from the database's WAL, whoever wrote the row (REST, GoTrue's trigger, plain SQL):

    slot.py        the logical slot (pgoutput, permanent, per region; on a standby too)
    wal.py         the task polling it: cadence, recovery, lag warnings
    pgoutput.py    pgoutput's binary messages ─► pgvalues.py  text ─► JSON values
    changes.py     messages ─► change records (record, old_record, columns) and the event's `data` JSON
    visibility.py  which subscribers may SELECT the row, asked as each of them (contract_realtime.sql)

For others: `subscriber_count(app)` and `disconnect_all(app)` (load-client tests simulate a server drop with it).
"""

from __future__ import annotations

import asyncio

from aiohttp import WSCloseCode, web

from harness.refstack.region.realtime.endpoint import HUB, broadcast_bulk, broadcast_one, websocket
from harness.refstack.region.realtime.hub import Hub, RealtimeSettings
from harness.refstack.region.realtime.wal import ChangeFeed

__all__ = ["FEED", "HUB", "RealtimeSettings", "channel_count", "disconnect_all", "setup", "subscriber_count"]

FEED = web.AppKey("realtime_feed", ChangeFeed)


def setup(app: web.Application, settings: RealtimeSettings | None = None) -> None:
    hub = Hub(settings)
    app[HUB] = hub
    feed = ChangeFeed(app, hub)
    app[FEED] = feed
    app.router.add_get("/realtime/v1/websocket", websocket)
    app.router.add_post("/realtime/v1/api/broadcast", broadcast_bulk)
    app.router.add_post("/realtime/v1/api/broadcast/{topic}/events/{event}", broadcast_one)

    async def start_feed(app: web.Application) -> None:
        await feed.start()

    async def stop(app: web.Application) -> None:
        await feed.stop()
        await disconnect_all(app, code=WSCloseCode.GOING_AWAY)

    app.on_startup.append(start_feed)
    app.on_shutdown.append(stop)


def subscriber_count(app: web.Application) -> int:
    """Open Realtime websockets (each may have joined several channels; see `channel_count`)."""
    return len(app[HUB].connections)


def channel_count(app: web.Application) -> int:
    """Joined channels over all sockets."""
    return app[HUB].channel_count()


async def disconnect_all(app: web.Application, *, code: int = WSCloseCode.GOING_AWAY, abort: bool = False) -> int:
    """Drop every Realtime socket: with a close frame (`code`, like a server restart) or, with `abort=True`, by
    resetting the TCP connections (like a network failure). Returns how many sockets were dropped. Run it on the
    server's loop (`srv.call(lambda: disconnect_all(srv.app))`)."""
    conns = list(app[HUB].connections)
    if abort:
        for conn in conns:
            conn.abort()
    else:
        await asyncio.gather(*(conn.close(code) for conn in conns), return_exceptions=True)
    return len(conns)
