"""An acknowledged write survives a restart of the region server on the same data directory, and a kill -9 of the
region process and of its PostgreSQL (the commit was flushed before the 201)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import asyncpg
import httpx
from aiohttp import web

from harness.procs.piece import PieceProcess
from harness.procs.serving import background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from tests.refstack.region.conftest import SERVICE_HEADERS as SERVICE
from tests.refstack.region.conftest import create_conversation, create_user, postgres_dsn, user_headers


def test_acknowledged_insert_survives_restart(tmp_path: Path) -> None:
    def factory() -> web.Application:
        return build_app(RegionConfig(data_dir=tmp_path))

    with background(factory) as first:
        user_id, token, refresh = create_user(first.url)
        conversation = create_conversation(first.url, token, [])
        row = {"conversation_id": conversation, "sender_id": user_id, "client_msg_id": "durable-1", "content": "kept"}
        ack = httpx.post(f"{first.url}/rest/v1/messages", headers=user_headers(token), json=row)
        assert ack.status_code == 201

    with background(factory) as restarted:
        url = f"{restarted.url}/rest/v1/messages?client_msg_id=eq.durable-1"
        assert [r["content"] for r in httpx.get(url, headers=user_headers(token)).json()] == ["kept"]
        # Sessions survive too: the refresh token issued before the restart still works.
        refreshed = httpx.post(
            f"{restarted.url}/auth/v1/token?grant_type=refresh_token",
            headers={"apikey": user_headers(token)["apikey"]},
            json={"refresh_token": refresh},
        )
        assert refreshed.status_code == 200


ROWS = 50
REGION_FACTORY = "harness.refstack.region.app:build_app_from_options"


def _start_region(data_dir: Path, log_path: Path) -> PieceProcess:
    return PieceProcess("primary", REGION_FACTORY, log_path, options={"data_dir": str(data_dir), "bcrypt_cost": 4})


def _database_identity(url: str) -> tuple[int, list[tuple[str, str]]]:
    """The cluster's system identifier (a new initdb changes it) and each recorded migration's row version (a
    migration or bootstrap file applied again would rewrite its row)."""

    async def read() -> tuple[int, list[tuple[str, str]]]:
        conn = await asyncpg.connect(postgres_dsn(url))
        try:
            system = await conn.fetchval("select system_identifier from pg_control_system()")
            rows = await conn.fetch("select version, xmin::text as x from supabase_migrations.schema_migrations")
            return int(system), sorted((r["version"], r["x"]) for r in rows)
        finally:
            await conn.close()

    return asyncio.run(read())


def _kill_9(region: PieceProcess, data_dir: Path) -> None:
    """SIGKILL the postmaster with every backend (its process group), as a crash of the database host would, and
    the region process; then wait until none of them is left (the killed postmaster is reaped once its parent, the
    region, is gone)."""
    postmaster = int((data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[0])
    os.killpg(postmaster, signal.SIGKILL)
    region.signal(signal.SIGKILL)
    assert region.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(postmaster, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    raise AssertionError(f"PostgreSQL (process group {postmaster}) still runs after SIGKILL")


def test_acknowledged_inserts_survive_kill_9_of_the_region_and_its_postgres(tmp_path: Path) -> None:
    data_dir = tmp_path / "region"
    region = _start_region(data_dir, tmp_path / "first.log")
    try:
        url = f"http://127.0.0.1:{region.port}"
        identity = _database_identity(url)
        headers = {**SERVICE, "Prefer": "return=minimal"}
        with httpx.Client(timeout=10) as client:
            for i in range(ROWS):
                ack = client.post(f"{url}/rest/v1/conversations", headers=headers, json={"title": f"durable-{i}"})
                assert ack.status_code == 201, ack.text
        _kill_9(region, data_dir)
    finally:
        region.stop()
    restarted = _start_region(data_dir, tmp_path / "second.log")
    try:
        url = f"http://127.0.0.1:{restarted.port}"
        rows = httpx.get(f"{url}/rest/v1/conversations", headers=SERVICE, params={"title": "like.durable-*"}).json()
        assert sorted(r["title"] for r in rows) == sorted(f"durable-{i}" for i in range(ROWS))
        assert _database_identity(url) == identity, "restart re-initialised the cluster or re-applied a migration"
    finally:
        restarted.stop()
