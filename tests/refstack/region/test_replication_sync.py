"""RegionConfig.synchronous_replica: the primary's commit waits until its replica has the WAL (RPO 0), so with the
replica down a commit does not complete; without it, the same commit returns at once (the RPO a drill measures)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest

from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from tests.refstack.region.conftest import postgres_dsn, wait_until
from tests.refstack.region.test_replication_postgres import replica_config, status, titles

WAIT_S = 1.5
"""How long a commit gets with the replica down: far beyond a local commit (a few ms)."""


async def _commit_with_replica_down(primary_dsn: str, title: str) -> tuple[bool, list[str]]:
    """(did the commit return within WAIT_S, what the waiting backend was waiting for meanwhile)."""
    writer, observer = await asyncpg.connect(primary_dsn), await asyncpg.connect(primary_dsn)
    try:
        insert = asyncio.ensure_future(writer.execute("insert into public.conversations (title) values ($1)", title))
        done, _ = await asyncio.wait({insert}, timeout=WAIT_S)
        waits = await observer.fetch(
            "select wait_event from pg_stat_activity where pid = $1 and wait_event is not null",
            writer.get_server_pid(),
        )
        if not done:
            insert.cancel()  # the backend gives up waiting; the row is committed locally (WARNING), not replicated
        return bool(done), [w["wait_event"] for w in waits]
    finally:
        await observer.close()
        writer.terminate()


@pytest.mark.parametrize("synchronous", [True, False])
def test_a_commit_waits_for_the_replica_only_when_synchronous(tmp_path: Path, synchronous: bool) -> None:
    with background(lambda: build_app(RegionConfig(synchronous_replica=synchronous))) as primary:
        config = replica_config(primary, data_dir=tmp_path)
        with background(lambda: build_app(config)) as replica:
            sync_state = wait_until(lambda: status(primary)["replicas"], timeout_s=5)[0]["sync_state"]
            assert sync_state == ("sync" if synchronous else "async")
            started = time.monotonic()
            _insert(primary, "replica up")
            assert time.monotonic() - started < WAIT_S
            assert wait_until(lambda: "replica up" in titles(replica), timeout_s=5)
        returned, waits = asyncio.run(_commit_with_replica_down(postgres_dsn(primary.url), "replica down"))
        if synchronous:
            assert not returned and waits == ["SyncRep"], "a synchronous commit completed without its replica"
        else:
            assert returned, "an asynchronous commit waited for a stopped replica"
        with background(lambda: build_app(config)) as restarted:
            wait_until(lambda: status(primary)["replicas"], timeout_s=10)
            started = time.monotonic()
            _insert(primary, "replica back")
            assert time.monotonic() - started < WAIT_S
            assert wait_until(lambda: "replica back" in titles(restarted), timeout_s=5)


def _insert(server: BackgroundServer, title: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(postgres_dsn(server.url))
        try:
            await asyncio.wait_for(conn.execute("insert into public.conversations (title) values ($1)", title), 10)
        finally:
            await conn.close()

    asyncio.run(run())
