"""Role-change listeners: how another module (Realtime's WAL decoding) hears that the database changed under it.

    on_role_change(app, listener)     call at setup time, in any order relative to replication's own setup

    listener("promoted")   the standby became a primary (same server, connections kept: nothing restarts)
    listener("stopping")   demotion is about to stop PostgreSQL: close replication/decoding connections now
    listener("restarted")  PostgreSQL runs again as a standby and app[DB]'s pools are reconnected: reopen them

A listener's exception is logged and does not stop the role change.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from aiohttp import web

log = logging.getLogger(__name__)

Phase = Literal["promoted", "stopping", "restarted"]
Listener = Callable[[Phase], Awaitable[None]]
LISTENERS = web.AppKey("role_change_listeners", list[Listener])


def on_role_change(app: web.Application, listener: Listener) -> None:
    app.setdefault(LISTENERS, []).append(listener)


async def notify(app: web.Application, phase: Phase) -> None:
    for listener in app.get(LISTENERS, []):
        try:
            await listener(phase)
        except Exception:
            log.exception("role-change listener %r failed on %s", listener, phase)
