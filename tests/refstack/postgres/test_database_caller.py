"""`Database.as_caller`: the caller's role and claims, read-only for reads, in both of its modes, on one connection
reused by every kind of request (the API pool keeps its connections between requests)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from harness.model.keys import Claims
from harness.refstack.postgres import migrations
from harness.refstack.postgres.cluster import Cluster
from harness.refstack.region.database import Database

SETUP = """
create table public.notes (id serial primary key, owner uuid not null default auth.uid(), body text);
alter table public.notes enable row level security;
create policy own on public.notes for all to authenticated using (owner = auth.uid()) with check (owner = auth.uid());
"""


def _claims(sub: str) -> Claims:
    return Claims("authenticated", sub, {"sub": sub, "role": "authenticated"})


def test_every_mode_sets_the_caller_and_the_access_mode_on_a_reused_connection(cluster: Cluster) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())

    async def main() -> None:
        conn = await asyncpg.connect(cluster.dsn())
        await migrations.bootstrap(conn)
        await conn.execute(SETUP)
        await conn.close()
        db = await Database.open(cluster.host, cluster.port, pool_size=1)  # one API connection for every request
        try:
            async with db.as_caller(_claims(alice), single_statement=True) as api:
                await api.execute("insert into public.notes (body) values ('alice')")
            async with db.as_caller(_claims(bob), read_only=True, single_statement=True) as api:
                assert await api.fetchval("select count(*) from public.notes") == 0  # RLS as bob
                with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                    await api.execute("insert into public.notes (body) values ('bob')")
            # A transactional write right after a single-statement read on the same connection is read-write.
            async with db.as_caller(_claims(bob)) as api:
                await api.execute("insert into public.notes (body) values ('bob')")
                assert await api.fetchval("select auth.uid()") == uuid.UUID(bob)
            async with db.as_caller(_claims(alice), read_only=True) as api:
                assert await api.fetchval("select array_agg(body) from public.notes") == ["alice"]
                with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                    await api.execute("delete from public.notes")
        finally:
            await db.close()

    asyncio.run(main())
