"""The region's connection to its PostgreSQL: every API request runs the way PostgREST runs it.

    async with db.as_caller(claims) as conn:      BEGIN (READ ONLY for reads)
        ...                                       set_config('role', <JWT role>, true),
                                                  set_config('request.jwt.claims', <claims JSON>, true),
                                                  set_config('request.jwt.claim.sub'/'.role'/'.email', …, true),
                                                  set_config('statement_timeout', …, true)
                                                  then the caller's statements; COMMIT (ROLLBACK on error)

So row-level security, defaults, triggers, check constraints and cascades are Postgres's own. The API pool logs in
as `authenticator` (which may only become anon, authenticated or service_role, as on Supabase); `as_admin` is the
bootstrap superuser, for what GoTrue and Storage do with their own admin roles, and for Realtime's decoding.

`as_caller(..., single_statement=True)` is the same in two round trips instead of four, for a request that is one
statement (every PostgREST request): the settings are made for the session (plus `default_transaction_read_only`
for reads) and the statement runs in its own implicit transaction, which is atomic all the same. Every use of an
API connection sets all of them first, so no caller's role or claims reach another request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from harness.model.keys import Claims

API_ROLES = frozenset({"anon", "authenticated", "service_role"})
_SET_CALLER = (
    "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true),"
    " set_config('request.jwt.claim.sub', $3, true), set_config('request.jwt.claim.role', $1, true),"
    " set_config('request.jwt.claim.email', $4, true), set_config('statement_timeout', $5, true)"
)
_SET_CALLER_SESSION = (
    "select set_config('role', $1, false), set_config('request.jwt.claims', $2, false),"
    " set_config('request.jwt.claim.sub', $3, false), set_config('request.jwt.claim.role', $1, false),"
    " set_config('request.jwt.claim.email', $4, false), set_config('statement_timeout', $5, false),"
    " set_config('default_transaction_read_only', $6, false)"
)
_SERVER_SETTINGS = {"jit": "off", "timezone": "UTC", "datestyle": "ISO, YMD"}


async def _rollback_if_left_open(conn: asyncpg.Connection) -> None:
    """The API pool's connections are only used inside `as_caller`, which sets every caller setting before its first
    statement; skipping asyncpg's default reset (RESET ALL, UNLISTEN, ...) saves a round trip a request. The admin
    pool's users (GoTrue, Storage, Realtime's decoding) set nothing beyond their transaction, take only
    transaction-level advisory locks, and the one listener removes itself (UNLISTEN) before it gives its connection
    back, so it skips the reset too: it ran ~120 times a second under `harness load`. A transaction somehow left
    open is still rolled back."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class Database:
    def __init__(self, api: asyncpg.Pool, admin: asyncpg.Pool, statement_timeout_ms: int) -> None:
        self.api = api
        self.admin = admin
        self.statement_timeout = f"{int(statement_timeout_ms)}ms"

    @classmethod
    async def open(cls, host: str, port: int, *, pool_size: int = 16, statement_timeout_ms: int = 8000) -> Database:
        # No idle-connection expiry: it arms a timer on every release and cancels it on every acquire, twice per
        # request, for pools that are small and live as long as the region.
        common: dict[str, Any] = {"host": host, "port": port, "database": "postgres", "command_timeout": 60,
                                  "max_inactive_connection_lifetime": 0}  # fmt: skip
        api = await asyncpg.create_pool(
            user="authenticator",
            min_size=min(2, pool_size),
            max_size=pool_size,
            reset=_rollback_if_left_open,
            server_settings={**_SERVER_SETTINGS, "application_name": "harness-region-api"},
            **common,
        )
        admin = await asyncpg.create_pool(
            user="supabase_admin",
            min_size=1,
            max_size=max(4, pool_size // 2),
            reset=_rollback_if_left_open,
            # Realtime polls its logical slot on this pool every few ms, and PostgreSQL logs "starting logical
            # decoding" at LOG level for each poll (log_min_messages ranks LOG above ERROR); FATAL keeps the log
            # readable. Errors still reach the region, which reports them.
            server_settings={
                **_SERVER_SETTINGS,
                "application_name": "harness-region-admin",
                "log_min_messages": "fatal",
            },
            **common,
        )
        return cls(api, admin, statement_timeout_ms)

    async def close(self) -> None:
        await self.api.close()
        await self.admin.close()

    @asynccontextmanager
    async def as_caller(
        self, claims: Claims, *, read_only: bool = False, single_statement: bool = False
    ) -> AsyncIterator[asyncpg.Connection]:
        """A transaction with the caller's role and claims set, as PostgREST opens one per request; with
        `single_statement`, the settings for the session and the one statement in autocommit (module docstring)."""
        settings = (
            claims.role,
            json.dumps(claims.raw, separators=(",", ":")),
            claims.sub or "",
            str(claims.raw.get("email") or ""),
            self.statement_timeout,
        )
        async with self.api.acquire() as conn:
            if single_statement:
                await conn.execute(_SET_CALLER_SESSION, *settings, "on" if read_only else "off")
                yield conn
                return
            # A single-statement use may have left default_transaction_read_only on; a write turns it off first, on
            # its own (in one query string with BEGIN it would join the transaction it has to precede), and not
            # with BEGIN READ WRITE, which a hot standby refuses before the write's own 25006.
            if read_only:
                await conn.execute("BEGIN READ ONLY")
            else:
                await conn.execute("SET default_transaction_read_only = off")
                await conn.execute("BEGIN")
            try:
                await conn.execute(_SET_CALLER, *settings)
                yield conn
            except BaseException:
                if not conn.is_closed():
                    await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    @asynccontextmanager
    async def as_admin(self) -> AsyncIterator[asyncpg.Connection]:
        """A transaction as the superuser (GoTrue's and Storage's own bookkeeping; no row-level security)."""
        async with self.admin.acquire() as conn, conn.transaction():
            yield conn

    async def in_recovery(self) -> bool:
        """True on a standby (a read replica before promotion)."""
        return bool(await self.admin.fetchval("select pg_is_in_recovery()"))
