"""The tables Realtime can serve: those in the `supabase_realtime` publication, with their columns and key, read from
the database's catalog at start-up (and again when decoding meets a table or column it does not know).

Joins need it synchronously (a binding names a table and a filter names a typed column), so it is held in memory;
the publication changes only when a migration runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

PUBLICATION = "supabase_realtime"

_TABLES_SQL = """
select c.oid, p.schemaname, p.tablename,
       array_agg(a.attname::text order by a.attnum) as columns,
       array_agg(t.typname::text order by a.attnum) as types,
       coalesce((select array_agg(k.attname::text order by x.ord)
                   from pg_index i
                   cross join unnest(i.indkey) with ordinality as x(attnum, ord)
                   join pg_attribute k on k.attrelid = i.indrelid and k.attnum = x.attnum
                  where i.indrelid = c.oid and i.indisprimary), '{}') as key
  from pg_publication_tables p
  join pg_namespace n on n.nspname = p.schemaname
  join pg_class c on c.relnamespace = n.oid and c.relname = p.tablename
  join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
  join pg_type t on t.oid = a.atttypid
 where p.pubname = $1
 group by c.oid, p.schemaname, p.tablename
 order by p.schemaname, p.tablename
"""


@dataclass(frozen=True)
class Column:
    name: str
    type_name: str
    """pg_type.typname: uuid, text, bool, int8, timestamptz, jsonb, … (what `columns` in an event says)."""


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})


@dataclass(frozen=True)
class Catalog:
    tables: dict[tuple[str, str], Table] = field(default_factory=dict)
    """By (schema, name)."""
    type_names: dict[int, str] = field(default_factory=dict)
    """pg_type.typname by OID (Relation messages name column types by OID)."""

    def in_schema(self, schema: str) -> list[Table]:
        return [t for (s, _), t in self.tables.items() if s == schema]

    def table(self, schema: str, name: str) -> Table | None:
        return self.tables.get((schema, name))


async def load(conn: asyncpg.Connection) -> Catalog:
    """The publication's tables and every type's name, in two queries."""
    tables = {}
    for row in await conn.fetch(_TABLES_SQL, PUBLICATION):
        columns = tuple(Column(n, t) for n, t in zip(row["columns"], row["types"], strict=True))
        tables[(row["schemaname"], row["tablename"])] = Table(
            row["schemaname"], row["tablename"], columns, tuple(row["key"])
        )
    type_names = {int(r["oid"]): r["typname"] for r in await conn.fetch("select oid, typname::text from pg_type")}
    return Catalog(tables, type_names)
