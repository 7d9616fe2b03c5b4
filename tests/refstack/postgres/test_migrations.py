"""Supabase's database contract and migrations folders, applied as `supabase db push` applies them."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from harness.refstack.postgres import migrations
from harness.refstack.postgres.cluster import Cluster
from harness.refstack.postgres.migrations import MigrationError


def run(cluster: Cluster, work: Any) -> Any:
    async def main() -> Any:
        conn = await asyncpg.connect(cluster.dsn())
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(main())


def test_bootstrap_gives_supabases_roles_schemas_and_helpers_once(cluster: Cluster) -> None:
    async def work(conn: asyncpg.Connection) -> None:
        assert await migrations.bootstrap(conn) == migrations.contract_files()
        assert await migrations.bootstrap(conn) == []  # recorded: never applied twice
        roles = {r["rolname"] for r in await conn.fetch("select rolname from pg_roles")}
        assert {"anon", "authenticated", "service_role", "authenticator", "supabase_admin"} <= roles
        assert await conn.fetchval("select rolbypassrls from pg_roles where rolname = 'service_role'") is True
        for table in ("auth.users", "auth.identities", "auth.sessions", "auth.refresh_tokens",
                      "storage.buckets", "storage.objects"):  # fmt: skip
            assert await conn.fetchval("select to_regclass($1) is not null", table), table
        assert await conn.fetchval("select storage.foldername('a/b/c.png')") == ["a", "b"]
        assert await conn.fetchval("select storage.filename('a/b/c.png')") == "c.png"
        assert await conn.fetchval("select storage.extension('a/b/c.png')") == "png"
        claims = {"sub": "6f1c3a52-6d0c-4a55-9a8e-5c7f6d6a1e01", "role": "authenticated", "email": "a@x.io"}
        async with conn.transaction():
            await conn.execute("select set_config('request.jwt.claims', $1, true)", json.dumps(claims))
            await conn.execute("set local role authenticated")
            assert str(await conn.fetchval("select auth.uid()")) == claims["sub"]
            assert await conn.fetchval("select auth.role()") == "authenticated"
            assert await conn.fetchval("select auth.jwt() ->> 'email'") == "a@x.io"

    run(cluster, work)


def test_the_apps_migration_applies_once_with_its_policies(cluster: Cluster) -> None:
    async def work(conn: asyncpg.Connection) -> None:
        await migrations.bootstrap(conn)
        shipped = [m.version for m in migrations.discover(migrations.default_folder())]
        assert shipped[0] == "20250101000000" and len(shipped) >= 2
        assert await migrations.apply(conn, migrations.default_folder()) == shipped
        assert await migrations.apply(conn, migrations.default_folder()) == []
        policies = {r["policyname"] for r in await conn.fetch("select policyname from pg_policies")}
        assert {"messages_select", "messages_insert", "conversations_update", "attachments_read"} <= policies
        published = await conn.fetch("select tablename from pg_publication_tables where pubname = 'supabase_realtime'")
        assert {r["tablename"] for r in published} == {"profiles", "conversations", "conversation_members", "messages"}

    run(cluster, work)


def test_a_failing_migration_names_file_and_line_and_leaves_nothing(cluster: Cluster, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for shipped in migrations.default_folder().glob("*.sql"):
        shutil.copy(shipped, folder)
    bad = folder / "20990202000000_broken.sql"
    bad.write_text("create table public.half (id int);\n\ncreate table public.worse (id nosuchtype);\n")

    async def work(conn: asyncpg.Connection) -> None:
        await migrations.bootstrap(conn)
        with pytest.raises(MigrationError) as failure:
            await migrations.apply(conn, folder)
        message = str(failure.value)
        assert f"{bad}:3" in message and "nosuchtype" in message
        assert await conn.fetchval("select to_regclass('public.half')") is None  # its transaction rolled back
        versions = [r["version"] for r in await conn.fetch("select version from supabase_migrations.schema_migrations")]
        assert "20990202000000" not in versions and "20250101000000" in versions

    run(cluster, work)


def test_badly_named_and_empty_folders_are_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="no such directory"):
        migrations.check_folder(tmp_path / "missing")
    with pytest.raises(MigrationError, match=r"no <version>_<name>\.sql files"):
        migrations.check_folder(tmp_path)
    (tmp_path / "init.sql").write_text("select 1;")
    with pytest.raises(MigrationError, match=r"named <version>_<name>\.sql"):
        migrations.check_folder(tmp_path)
