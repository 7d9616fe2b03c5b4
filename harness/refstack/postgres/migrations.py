"""Supabase's database contract and a migrations folder, applied the way `supabase db push` applies them.

    bootstrap(conn)                supabase.sql, then contract_*.sql (services' own objects), each file once
                                   (recorded in supabase_migrations.schema_migrations as "0_harness_<file>")
    apply(conn, folder)            every `<version>_<name>.sql` not yet recorded, in filename order, one
                                   transaction each, recorded in supabase_migrations.schema_migrations

A failing migration raises MigrationError naming the file, the line and Postgres's message; nothing of that file
is kept (its transaction rolls back), so the stack never starts half-migrated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

from harness.errors import ConfigError
from harness.model.files import MAX_DATA_BYTES, read_text

BOOTSTRAP_PREFIX = "0_harness_"
"""Versions of the bootstrap files in schema_migrations: sorted before any real migration's timestamp."""
_FILE_NAME = re.compile(r"^(?P<version>\d+)_(?P<name>.+)\.sql$")


class MigrationError(ConfigError):
    """A migration failed to apply: the message names the file, line and the database's error."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path


def default_folder() -> Path:
    """The app's own migrations, shipped with the harness (`supabase/migrations/` in the checkout)."""
    return Path(str(resources.files("harness.migrations")))


def discover(folder: Path) -> list[Migration]:
    if not folder.is_dir():
        raise MigrationError(f"--migrations {folder}: no such directory; give a Supabase migrations folder")
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(
                f"{path}: a migration file is named <version>_<name>.sql (e.g. 20250101000000_init.sql), "
                "as `supabase migration new` names them; rename it or move it out of the folder"
            )
        found.append(Migration(match["version"], match["name"], path))
    return found


def check_folder(folder: Path) -> Path:
    """`--migrations FOLDER` checked before anything starts: it exists and holds well-named migrations, each UTF-8
    text (PostgreSQL takes no other, and a bad file found only at start-up would cost the stack's start)."""
    migrations = discover(folder)
    if not migrations:
        raise MigrationError(
            f"--migrations {folder}: no <version>_<name>.sql files in it; give a Supabase migrations folder "
            "(supabase/migrations of your project)"
        )
    for migration in migrations:
        try:
            read_text(migration.path, "migration", max_bytes=MAX_DATA_BYTES)
        except ConfigError as exc:
            raise MigrationError(str(exc)) from None
    return folder.resolve()


async def _applied(conn: asyncpg.Connection) -> set[str]:
    exists = await conn.fetchval("select to_regclass('supabase_migrations.schema_migrations') is not null")
    if not exists:
        return set()
    return {r["version"] for r in await conn.fetch("select version from supabase_migrations.schema_migrations")}


def _line_of(sql: str, error: asyncpg.PostgresError) -> int | None:
    position = getattr(error, "position", None)
    if not position:
        return None
    return sql.count("\n", 0, int(position) - 1) + 1


async def _run(conn: asyncpg.Connection, version: str, name: str, sql: str, where: str) -> None:
    try:
        async with conn.transaction():
            await conn.execute(sql)
            await conn.execute(
                "insert into supabase_migrations.schema_migrations (version, name, statements) values ($1, $2, $3)",
                version,
                name,
                [sql],
            )
    except asyncpg.PostgresError as exc:
        line = _line_of(sql, exc)
        at = f"{where}:{line}" if line else where
        detail = f" ({exc.detail})" if getattr(exc, "detail", None) else ""
        raise MigrationError(f"migration {at} failed: {exc.sqlstate} {exc}{detail}") from None


def contract_files() -> list[str]:
    """supabase.sql first, then each service's own objects (`contract_<service>.sql`, e.g. Realtime's), by name."""
    package = resources.files("harness.refstack.postgres")
    extra = sorted(p.name for p in package.iterdir() if p.name.startswith("contract_") and p.name.endswith(".sql"))
    return ["supabase.sql", *extra]


async def bootstrap(conn: asyncpg.Connection) -> list[str]:
    """Supabase's roles and schemas and each service's own objects, each file once; return the files applied now."""
    package = resources.files("harness.refstack.postgres")
    applied: list[str] = []
    for name in contract_files():
        version = f"{BOOTSTRAP_PREFIX}{name.removesuffix('.sql')}"
        if version in await _applied(conn):
            continue
        await _run(conn, version, f"harness {name}", package.joinpath(name).read_text(), f"harness bootstrap {name}")
        applied.append(name)
    return applied


async def apply(conn: asyncpg.Connection, folder: Path) -> list[str]:
    """Apply the folder's migrations not yet recorded; return the versions applied now."""
    migrations = discover(folder)
    done = await _applied(conn)
    applied: list[str] = []
    for migration in migrations:
        if migration.version in done:
            continue
        try:
            sql = read_text(migration.path, "migration", max_bytes=MAX_DATA_BYTES)
        except ConfigError as exc:
            raise MigrationError(str(exc)) from None
        await _run(conn, migration.version, migration.name, sql, str(migration.path))
        applied.append(migration.version)
    return applied
