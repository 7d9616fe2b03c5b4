"""PostgREST's schema cache: what the exposed schema `public` holds, read from pg_catalog.

    tables     tables, views, materialized views, foreign and partitioned tables, with their columns (type,
               nullability, default), primary key, unique constraints and foreign keys (for embedding)
    functions  every function in `public` (for /rpc): parameter names, types and defaults, the result's shape

Loaded when the region starts (after the migrations ran) and again on `NOTIFY pgrst, 'reload schema'`, which
contract_rest.sql's event trigger sends after every DDL statement, as Supabase's `pgrst_ddl_watch` does. Every
name a request mentions is looked up here first, so an unknown table, column or function never reaches SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web

from harness.refstack.region.state import DB

log = logging.getLogger(__name__)

SCHEMA = "public"
CHANNEL = "pgrst"

_TABLES = """
select c.oid, c.relname, c.relkind::text as relkind
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relkind in ('r', 'v', 'm', 'f', 'p')
"""
_COLUMNS = """
select a.attrelid, a.attname, format_type(a.atttypid, null) as type, bt.typname as base,
       bt.typcategory::text as category, a.attnotnull, pg_get_expr(d.adbin, d.adrelid) as default_expr,
       a.attgenerated <> '' as generated
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
join pg_type t on t.oid = a.atttypid
join pg_type bt on bt.oid = case when t.typtype = 'd' then t.typbasetype else t.oid end
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where n.nspname = $1 and c.relkind in ('r', 'v', 'm', 'f', 'p') and a.attnum > 0 and not a.attisdropped
order by a.attrelid, a.attnum
"""
_CONSTRAINTS = """
select con.conname, con.contype::text as contype, con.conrelid, con.confrelid,
       array(select a.attname from unnest(con.conkey) with ordinality k(num, i)
             join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.num order by k.i) as columns,
       array(select a.attname from unnest(con.confkey) with ordinality k(num, i)
             join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.num order by k.i) as ref_columns
from pg_constraint con
join pg_class c on c.oid = con.conrelid
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and con.contype in ('p', 'u', 'f')
order by con.conname
"""
_FUNCTIONS = """
select p.oid, p.proname, p.proretset, p.provolatile::text as provolatile,
       format_type(p.prorettype, null) as return_type, rt.typtype::text as return_kind,
       rt.typrelid as return_relid, rt.typname as return_name, p.pronargdefaults,
       coalesce(p.proargnames, '{}') as arg_names,
       coalesce(p.proargmodes::text[], array_fill('i'::text, array[p.pronargs::int])) as arg_modes,
       array(select format_type(x, null) from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]))
             with ordinality u(x, i) order by i) as arg_types
from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_type rt on rt.oid = p.prorettype
where n.nspname = $1 and p.prokind = 'f' and rt.typname not in ('trigger', 'event_trigger')
order by p.proname, p.oid
"""
_COMPOSITE_COLUMNS = """
select a.attrelid, a.attname, format_type(a.atttypid, null) as type, bt.typname as base,
       bt.typcategory::text as category
from pg_attribute a
join pg_type t on t.oid = a.atttypid
join pg_type bt on bt.oid = case when t.typtype = 'd' then t.typbasetype else t.oid end
where a.attrelid = any($1::oid[]) and a.attnum > 0 and not a.attisdropped
order by a.attrelid, a.attnum
"""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    """The SQL type without modifiers (format_type), used to cast request values: `$1::text::<type>`."""
    base: str = "text"
    """The base type's name (a domain's underlying type): picks JSON-path and full-text handling."""
    category: str = "S"
    """pg_type.typcategory of the base type (A array, U user-defined incl. json/jsonb, R range, ...)."""
    nullable: bool = True
    default: str | None = None
    """The default expression, as Postgres prints it (used for `Prefer: missing=default`)."""
    generated: bool = False


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass
class Table:
    name: str
    kind: str
    columns: dict[str, Column] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ()
    unique: list[tuple[str, ...]] = field(default_factory=list)

    def is_unique(self, columns: tuple[str, ...]) -> bool:
        wanted = set(columns)
        return any(set(key) <= wanted for key in [self.primary_key, *self.unique] if key)


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    has_default: bool


@dataclass
class Function:
    name: str
    params: list[Param]
    returns_set: bool
    volatile: bool
    return_type: str
    return_kind: str
    """pg_type.typtype of the result: b base, c composite, d domain, e enum, p pseudo (void, record), r range."""
    return_table: str | None
    """The exposed table the function returns rows of (SETOF messages), so those rows can embed."""
    columns: dict[str, Column] = field(default_factory=dict)
    """The result's columns when it returns rows (a composite, TABLE(...) or OUT parameters); empty for scalars."""

    @property
    def returns_rows(self) -> bool:
        return bool(self.columns)

    @property
    def returns_void(self) -> bool:
        return self.return_type == "void"

    def required(self) -> set[str]:
        return {p.name for p in self.params if not p.has_default}


@dataclass
class SchemaCache:
    tables: dict[str, Table] = field(default_factory=dict)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    functions: dict[str, list[Function]] = field(default_factory=dict)

    def relationships(self, parent: str, child: str) -> list[tuple[ForeignKey, str]]:
        """Foreign keys joining `parent` to `child`, each with its cardinality seen from the parent."""
        found: list[tuple[ForeignKey, str]] = []
        for fk in self.foreign_keys:
            if fk.table == parent and fk.ref_table == child:
                found.append((fk, "many-to-one"))
            if fk.ref_table == parent and fk.table == child:
                one = self.tables[child].is_unique(fk.columns)
                found.append((fk, "one-to-one" if one else "one-to-many"))
        return found


async def load(conn: asyncpg.Connection, schema: str = SCHEMA) -> SchemaCache:
    """Read the schema in one repeatable-read snapshot (a few catalog queries at start or reload, never per request)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        tables_rows = await conn.fetch(_TABLES, schema)
        column_rows = await conn.fetch(_COLUMNS, schema)
        constraint_rows = await conn.fetch(_CONSTRAINTS, schema)
        function_rows = await conn.fetch(_FUNCTIONS, schema)
        composite_ids = [r["return_relid"] for r in function_rows if r["return_relid"]]
        composite_rows = await conn.fetch(_COMPOSITE_COLUMNS, composite_ids) if composite_ids else []
    cache = SchemaCache()
    by_oid: dict[int, Table] = {}
    for row in tables_rows:
        table = Table(row["relname"], row["relkind"])
        cache.tables[table.name] = by_oid[row["oid"]] = table
    for row in column_rows:
        table = by_oid[row["attrelid"]]
        table.columns[row["attname"]] = Column(
            row["attname"],
            row["type"],
            row["base"],
            row["category"],
            not row["attnotnull"],
            row["default_expr"],
            row["generated"],
        )
    for row in constraint_rows:
        table = by_oid[row["conrelid"]]
        columns = tuple(row["columns"])
        if row["contype"] == "p":
            table.primary_key = columns
        elif row["contype"] == "u":
            table.unique.append(columns)
        elif row["confrelid"] in by_oid:
            ref = by_oid[row["confrelid"]]
            cache.foreign_keys.append(
                ForeignKey(row["conname"], table.name, columns, ref.name, tuple(row["ref_columns"]))
            )
    composites: dict[int, dict[str, Column]] = {}
    for row in composite_rows:
        composites.setdefault(row["attrelid"], {})[row["attname"]] = Column(
            row["attname"], row["type"], row["base"], row["category"]
        )
    for row in function_rows:
        function = _function(row, by_oid, composites)
        if function is not None:
            cache.functions.setdefault(function.name, []).append(function)
    return cache


def _function(
    row: asyncpg.Record, tables: dict[int, Table], composites: dict[int, dict[str, Column]]
) -> Function | None:
    names: list[str] = list(row["arg_names"])
    modes: list[str] = list(row["arg_modes"])
    types: list[str] = list(row["arg_types"])
    names += [""] * (len(types) - len(names))
    inputs = [(n, t) for n, m, t in zip(names, modes, types, strict=False) if m in ("i", "b", "v")]
    outputs = [(n, t) for n, m, t in zip(names, modes, types, strict=False) if m in ("o", "b", "t")]
    defaults = row["pronargdefaults"]
    params = [Param(n, t, i >= len(inputs) - defaults) for i, (n, t) in enumerate(inputs)]
    if any(not p.name for p in params) and not (len(params) == 1 and params[0].type in ("json", "jsonb")):
        return None  # unnamed parameters cannot be passed by name; PostgREST skips them too
    relid = row["return_relid"]
    columns: dict[str, Column] = {}
    return_table: str | None = None
    if relid:
        table = tables.get(relid)
        if table is not None:
            return_table = table.name
            columns = dict(table.columns)
        else:
            columns = composites.get(relid, {})
    elif outputs and row["return_name"] == "record":
        columns = {n: Column(n, t) for n, t in outputs}
    return Function(
        row["proname"],
        params,
        row["proretset"],
        row["provolatile"] == "v",
        row["return_type"],
        row["return_kind"],
        return_table,
        columns,
    )


# -- keeping it fresh ---------------------------------------------------------------------------------------------
CACHE = web.AppKey("rest_schema_cache", SchemaCache)
_LISTENER = web.AppKey("rest_schema_listener", asyncpg.Connection)


async def reload(app: web.Application) -> SchemaCache:
    """Re-read the schema now (what `NOTIFY pgrst, 'reload schema'` triggers)."""
    async with app[DB].admin.acquire() as conn:
        cache = await load(conn)
    app[CACHE] = cache
    return cache


class _Reloader:
    """The `pgrst` channel's listener: each `reload schema` notification re-reads the cache in the background."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.tasks: set[asyncio.Task[SchemaCache]] = set()

    def __call__(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload.strip() not in ("reload schema", ""):
            return
        task = asyncio.get_running_loop().create_task(reload(self.app))
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[SchemaCache]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("schema cache reload failed: %s", task.exception())


_RELOADER = web.AppKey("rest_schema_reloader", _Reloader)


async def start(app: web.Application) -> None:
    """Load the cache and LISTEN on `pgrst` on a connection held for that (a pooled one could not keep listening).

    A read replica cannot LISTEN in recovery; it loads the cache at start (its schema is its primary's)."""
    await reload(app)
    if await app[DB].in_recovery():
        return
    listener: asyncpg.Connection = await app[DB].admin.acquire()
    reloader = _Reloader(app)
    await listener.add_listener(CHANNEL, reloader)
    app[_LISTENER] = listener
    app[_RELOADER] = reloader


async def stop(app: web.Application) -> None:
    listener = app.get(_LISTENER)
    if listener is None:
        return
    reloader = app[_RELOADER]
    for task in list(reloader.tasks):
        task.cancel()
    # A restart under it (failback, a crash) lost the connection and asyncpg took the proxy back: nothing to release.
    with contextlib.suppress(asyncpg.InterfaceError):
        if not listener.is_closed():
            await listener.remove_listener(CHANNEL, reloader)
            await app[DB].admin.release(listener)
