"""Am I a standby? PostgreSQL's own answer (`pg_is_in_recovery()`), cached for a moment.

Write forwarding asks this on every write, so the answer is cached for `TTL_S`: a request costs no extra round trip
at 1,000 requests/s, and a promotion done elsewhere (a drill calling `pg_promote()` directly) is noticed within
`TTL_S`. Our own promotion and demotion set the answer at once. While the database cannot answer (a restart during
failback), the last known answer stands.
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from harness.refstack.region.database import Database

log = logging.getLogger(__name__)

TTL_S = 0.5
"""How long one answer is trusted."""


class StandbyCheck:
    def __init__(self, assume_standby: bool) -> None:
        self._standby = assume_standby
        self._checked_at: float | None = None
        self._lock = asyncio.Lock()

    @property
    def last_known(self) -> bool:
        return self._standby

    def set(self, standby: bool) -> None:
        """Record a role change we made ourselves (promotion, demotion): no need to ask."""
        self._standby = standby
        self._checked_at = time.monotonic()

    def _fresh(self) -> bool:
        return self._checked_at is not None and time.monotonic() - self._checked_at < TTL_S

    async def is_standby(self, db: Database) -> bool:
        if self._fresh():
            return self._standby
        async with self._lock:  # one query refreshes the answer for every request waiting on it
            if self._fresh():
                return self._standby
            try:
                self.set(await db.in_recovery())
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.debug("pg_is_in_recovery() unanswered (%s): keeping the last known role", exc)
        return self._standby
