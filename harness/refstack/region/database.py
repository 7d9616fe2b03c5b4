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
_SERVER_SETTINGS = {"jit": "off", "timezone": "UTC", "datestyle": "ISO, YMD"}


async def _rollback_if_left_open(conn: asyncpg.Connection) -> None:
    """The API pool's connections are only used inside `as_caller`, whose settings are transaction-local and end
    with its COMMIT or ROLLBACK; skipping asyncpg's default reset (RESET ALL, UNLISTEN, ...) saves a round trip a
    request. A transaction somehow left open is still rolled back, so no caller's role outlives its request."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class Database:
    def __init__(self, api: asyncpg.Pool, admin: asyncpg.Pool, statement_timeout_ms: int) -> None:
        self.api = api
        self.admin = admin
        self.statement_timeout = f"{int(statement_timeout_ms)}ms"

    @classmethod
    async def open(cls, host: str, port: int, *, pool_size: int = 16, statement_timeout_ms: int = 8000) -> Database:
        common: dict[str, Any] = {"host": host, "port": port, "database": "postgres", "command_timeout": 60}
        api = await asyncpg.create_pool(
            user="authenticator",
            min_size=2,
            max_size=pool_size,
            reset=_rollback_if_left_open,
            server_settings={**_SERVER_SETTINGS, "application_name": "harness-region-api"},
            **common,
        )
        admin = await asyncpg.create_pool(
            user="supabase_admin",
            min_size=1,
            max_size=max(4, pool_size // 2),
            server_settings={**_SERVER_SETTINGS, "application_name": "harness-region-admin"},
            **common,
        )
        return cls(api, admin, statement_timeout_ms)

    async def close(self) -> None:
        await self.api.close()
        await self.admin.close()

    @asynccontextmanager
    async def as_caller(self, claims: Claims, *, read_only: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """A transaction with the caller's role and claims set, as PostgREST opens one per request."""
        async with self.api.acquire() as conn, conn.transaction(readonly=read_only):
            await conn.execute(
                _SET_CALLER,
                claims.role,
                json.dumps(claims.raw, separators=(",", ":")),
                claims.sub or "",
                str(claims.raw.get("email") or ""),
                self.statement_timeout,
            )
            yield conn

    @asynccontextmanager
    async def as_admin(self) -> AsyncIterator[asyncpg.Connection]:
        """A transaction as the superuser (GoTrue's and Storage's own bookkeeping; no row-level security)."""
        async with self.admin.acquire() as conn, conn.transaction():
            yield conn

    async def in_recovery(self) -> bool:
        """True on a standby (a read replica before promotion)."""
        return bool(await self.admin.fetchval("select pg_is_in_recovery()"))
