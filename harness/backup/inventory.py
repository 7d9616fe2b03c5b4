"""What a database holds, table by table: exact row counts and a digest of a sample of rows, taken the same way
on the source (at backup time, inside the dump's snapshot) and on a restored copy, so the two can be compared.

    tables in the schemas asked (public, auth, storage by default), ordinary tables only
      ├── rows            count(*)
      └── sample digest   sha256 over `t::text` of the first N rows by primary key (uuid keys make that a spread
                          sample); no primary key: counts only

The session settings that shape a row's text (time zone, date and interval style, float digits, bytea output) are
pinned, so the same row prints the same on any server. `compare_with_source` also checks a restored copy's sample
rows against the live source, by primary key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

DEFAULT_SCHEMAS = ("public", "auth", "storage")
DEFAULT_SAMPLE_ROWS = 100
SESSION_SETTINGS = (
    "set time zone 'UTC'; set datestyle = 'ISO, YMD'; set intervalstyle = 'postgres'; "
    "set extra_float_digits = 1; set bytea_output = 'hex'"
)

_TABLES = """
select n.nspname as schema, c.relname as name,
       (select array_agg(a.attname::text order by array_position(i.indkey::int2[], a.attnum))
          from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey::int2[])
         where i.indrelid = c.oid and i.indisprimary) as key,
       (select array_agg(format_type(a.atttypid, a.atttypmod) order by array_position(i.indkey::int2[], a.attnum))
          from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey::int2[])
         where i.indrelid = c.oid and i.indisprimary) as key_types,
       (select array_agg(a.attcollation <> 0 order by array_position(i.indkey::int2[], a.attnum))
          from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey::int2[])
         where i.indrelid = c.oid and i.indisprimary) as key_collatable
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where c.relkind = 'r' and n.nspname = any($1::text[])
 order by 1, 2
"""


@dataclass(frozen=True)
class TableCount:
    schema: str
    table: str
    rows: int
    key: tuple[str, ...]
    """Primary key columns; empty when the table has none (then no sample)."""
    key_types: tuple[str, ...]
    """Their SQL types (format_type), to look rows up by key in another database."""
    sample_rows: int
    sample_sha256: str | None

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True)
class TableComparison:
    name: str
    expected_rows: int | None
    """None: the table is in the restored copy but not in the backup's inventory."""
    actual_rows: int | None
    """None: the table is in the backup's inventory but missing from the restored copy."""
    sample: str
    """"equal", "differs", "none" (no primary key or --sample-rows 0: counts only), "-" (a side is missing)."""

    @property
    def ok(self) -> bool:
        return self.expected_rows == self.actual_rows and self.sample in ("equal", "none")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _qualified(schema: str, table: str) -> str:
    return f"{_ident(schema)}.{_ident(table)}"


async def prepare_session(conn: asyncpg.Connection) -> None:
    await conn.execute(SESSION_SETTINGS)


async def take(
    conn: asyncpg.Connection, schemas: Sequence[str] = DEFAULT_SCHEMAS, sample_rows: int = DEFAULT_SAMPLE_ROWS
) -> list[TableCount]:
    """Counts and sample digests of every table in `schemas`, in the connection's current transaction."""
    await prepare_session(conn)
    counts: list[TableCount] = []
    for row in await conn.fetch(_TABLES, list(schemas)):
        schema, table = row["schema"], row["name"]
        key, key_types = tuple(row["key"] or ()), tuple(row["key_types"] or ())
        qualified = _qualified(schema, table)
        rows = int(await conn.fetchval(f"select count(*) from only {qualified}"))
        digest, sampled = None, 0
        if key and sample_rows > 0:
            # Text keys sort by byte order: the source's and the copy's default collations may differ.
            collatable = row["key_collatable"]
            order = ", ".join(
                _ident(c) + (' collate "C"' if coll else "") for c, coll in zip(key, collatable, strict=True)
            )
            sql = f"select t::text as r from only {qualified} t order by {order} limit {sample_rows}"
            texts = await conn.fetch(sql)
            sampled = len(texts)
            digest = hashlib.sha256("\n".join(r["r"] for r in texts).encode()).hexdigest()
        counts.append(TableCount(schema, table, rows, key, key_types, sampled, digest))
    return counts


def compare(expected: Sequence[TableCount], actual: Sequence[TableCount]) -> list[TableComparison]:
    """Each table of either side: rows and sample digest equal?"""
    mine = {t.name: t for t in actual}
    theirs = {t.name: t for t in expected}
    out: list[TableComparison] = []
    for name in sorted(set(mine) | set(theirs)):
        want, got = theirs.get(name), mine.get(name)
        if want is None or got is None:
            sample = "-"
        elif want.sample_sha256 is None and got.sample_sha256 is None:
            sample = "none"
        else:
            sample = "equal" if want.sample_sha256 == got.sample_sha256 else "differs"
        out.append(TableComparison(name, want.rows if want else None, got.rows if got else None, sample))
    return out


@dataclass(frozen=True)
class SourceSample:
    name: str
    sampled: int
    differing: int
    """Rows of the restored sample that the source now has with other values, or no longer has."""


async def compare_with_source(
    restored: asyncpg.Connection,
    source: asyncpg.Connection,
    tables: Sequence[TableCount],
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
) -> list[SourceSample]:
    """The restored copy's first `sample_rows` rows by primary key of each table, looked up in the source by key."""
    await prepare_session(restored)
    await prepare_session(source)
    out: list[SourceSample] = []
    for table in tables:
        if not table.key:
            continue
        qualified = _qualified(table.schema, table.table)
        order = ", ".join(_ident(c) for c in table.key)
        keys_text = ", ".join(f"{_ident(c)}::text" for c in table.key)
        rows = await restored.fetch(
            f"select t::text as r, {keys_text} from only {qualified} t order by {order} limit {sample_rows}"
        )
        if not rows:
            out.append(SourceSample(table.name, 0, 0))
            continue
        # One unnest()ed text array per key column, cast back to the column's type so the source uses its index.
        columns = [[r[i + 1] for r in rows] for i in range(len(table.key))]
        aliases = [f"k{i}" for i in range(len(table.key))]
        placeholders = ", ".join(f"${i + 1}::text[]" for i in range(len(table.key)))
        join = " and ".join(
            f"t.{_ident(c)} = k.{a}::{typ}" for c, a, typ in zip(table.key, aliases, table.key_types, strict=True)
        )
        found = await source.fetch(
            f"select t::text as r from only {qualified} t join unnest({placeholders}) as k({', '.join(aliases)}) "
            f"on {join}",
            *columns,
        )
        at_source = {r["r"] for r in found}
        differing = sum(1 for r in rows if r["r"] not in at_source)
        out.append(SourceSample(table.name, len(rows), differing))
    return out
