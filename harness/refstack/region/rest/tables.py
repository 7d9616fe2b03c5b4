"""`/rest/v1/<table>`: GET/HEAD read, POST insert (and upsert), PATCH update, DELETE delete, each ONE statement in
the caller's transaction (`Database.as_caller`, read-only for GET/HEAD), so row-level security, defaults,
triggers, constraints and cascades are Postgres's own.

Upsert is `INSERT … ON CONFLICT (…) DO UPDATE SET c = EXCLUDED.c`: Postgres applies the UPDATE policy to the
existing row, so an upsert can never take over a row its caller could not update.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import asyncpg
from aiohttp import web

from harness.refstack.region.rest import body, negotiation, sql, syntax
from harness.refstack.region.rest.errors import ApiError, bad_body, bad_query, column_not_found, singular
from harness.refstack.region.rest.negotiation import Output, Prefer
from harness.refstack.region.rest.plan import EmbedPresence, Node, Planner
from harness.refstack.region.rest.schema_cache import Column, SchemaCache, Table
from harness.refstack.region.rest.session import Caller

READ_METHODS = ("GET", "HEAD")


class _RolledBack(Exception):
    """Raised at the end of a `Prefer: tx=rollback` transaction, so it rolls back instead of committing."""


@asynccontextmanager
async def transaction(
    caller: Caller, prefer: Prefer, *, read_only: bool, single_statement: bool = False
) -> AsyncIterator[asyncpg.Connection]:
    """The request's transaction. `Prefer: tx=rollback` ends it in a rollback (after SET CONSTRAINTS ALL
    IMMEDIATE, so deferred constraints still answer, as PostgREST does); it and `max-affected` (which must be
    able to undo the statement) need a real transaction rather than the single-statement shortcut."""
    rollback = prefer.tx == "rollback" and not read_only
    single = single_statement and not rollback and not prefer.guards_affected
    try:
        async with caller.transaction(read_only=read_only, single_statement=single) as conn:
            yield conn
            if rollback:
                await conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
                raise _RolledBack
    except _RolledBack:
        pass


def check_affected(prefer: Prefer, count: int) -> None:
    """`max-affected` with `handling=strict`: more rows than allowed is 400 PGRST124 (raised inside the
    transaction, so the statement is undone)."""
    if prefer.guards_affected and prefer.max_affected is not None and count > prefer.max_affected:
        raise ApiError(
            400,
            "PGRST124",
            "Query result exceeds max-affected preference constraint",
            details=f"The query affects {count} rows",
        )


def with_applied(response: web.StreamResponse, applied: str) -> web.StreamResponse:
    if applied:
        response.headers["Preference-Applied"] = applied
    return response


async def handle(request: web.Request, caller: Caller, cache: SchemaCache, table: Table) -> web.StreamResponse:
    method = request.method
    prefer = negotiation.prefer(request)
    kind = negotiation.output(request)
    planner = Planner(cache)
    node = planner.root(table.name, table.columns, request.query.get("select"), table=table.name)
    planner.apply_params(node, request.query.items())
    prefer.check_strict()
    if method in READ_METHODS:
        response = await read(request, caller, node, source=sql.qualified(table.name), prefer=prefer, kind=kind)
        return with_applied(response, prefer.applied("read"))
    if any(isinstance(item, EmbedPresence) for item in node.where):
        raise bad_query(f'"embedded resource filter on {method}"', "filter a write by its own columns")
    if node.limit is not None or node.offset:
        raise bad_query(
            f'"limit/offset on {method}"', "this reference stack does not support limit or offset on writes"
        )
    if method == "POST":
        resolvable = bool(table.primary_key) or "on_conflict" in request.query
        response = await _insert(request, caller, table, node, prefer, kind)
        return with_applied(response, prefer.applied("create", resolvable=resolvable))
    if method == "PATCH":
        return with_applied(await _update(request, caller, table, node, prefer, kind), prefer.applied("update"))
    return with_applied(await _delete(request, caller, node, prefer, kind), prefer.applied("delete"))


# -- reads -------------------------------------------------------------------------------------------------------
async def read(
    request: web.Request,
    caller: Caller,
    node: Node,
    *,
    source: str,
    prefer: Prefer,
    kind: Output,
    scalar: str | None = None,
    ctes: str = "",
    params: sql.Params | None = None,
    read_only: bool = True,
    object_result: bool = False,
) -> web.StreamResponse:
    """A read of `source` (a table, or a function call for /rpc) shaped by the select, with Content-Range."""
    node.limit, node.offset = negotiation.page(request, node.limit, node.offset)
    params = params or sql.Params()
    exact = prefer.count in ("exact", "estimated")
    statement = sql.read_statement(node, source, params, count=exact, csv=kind == "csv", scalar=scalar, ctes=ctes)
    async with transaction(caller, prefer, read_only=read_only, single_statement=True) as conn:
        row = await conn.fetchrow(statement, *params.values)
        total: int | None = row["total"]
        if prefer.count == "planned":
            total = await _planned_count(conn, node, source, ctes, params)
        check_affected(prefer, int(row["page"]))
    count = int(row["page"])
    offset = node.offset or 0
    if total is not None and count == 0 and offset > total:
        raise ApiError(
            416,
            "PGRST103",
            "Requested range not satisfiable",
            details=f"An offset of {offset} was requested, but there are only {total} rows.",
        )
    shown = "*" if total is None else str(total)
    content_range = f"{offset}-{offset + count - 1}/{shown}" if count else f"*/{shown}"
    status = 206 if total is not None and count < total else 200
    text: str = row["body"]
    if object_result:
        text = text[1:-1] if count == 1 else "null"
    return respond(request, kind, text, count, status, {"Content-Range": content_range})


async def _planned_count(conn: asyncpg.Connection, node: Node, source: str, ctes: str, params: sql.Params) -> int:
    """The planner's row estimate (Prefer: count=planned): EXPLAIN of a generic plan, no values bound, no scan."""
    listed = sql.count_sql(node, source, sql.Params(list(params.values)), what="1")
    prefix = f"WITH {ctes.rstrip(', ')} " if ctes else ""
    plan = await conn.fetchval(f"EXPLAIN (GENERIC_PLAN, FORMAT JSON) {prefix}{listed}")
    return int(json.loads(plan)[0]["Plan"]["Plan Rows"])


def respond(
    request: web.Request, kind: Output, text: str | None, count: int, status: int, headers: dict[str, str]
) -> web.Response:
    """The body Postgres built, as JSON (or one object for the singular media type, or CSV)."""
    if kind == "singular":
        if count != 1:
            raise singular(count)
        text = text[1:-1] if text is not None else None
    if request.method == "HEAD":
        text = None
    return web.Response(
        body=None if text is None else text.encode(),
        status=status,
        headers={**headers, "Content-Type": negotiation.content_type(kind)},
    )


# -- writes -------------------------------------------------------------------------------------------------------
def _columns(table: Table, names: list[str]) -> list[Column]:
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise column_not_found(table.name, missing[0])
    return [table.columns[n] for n in names]


def _insert_columns(request: web.Request, table: Table, rows: list[dict[str, Any]]) -> list[Column]:
    """`?columns=` names them; otherwise every object must have the first one's keys (PostgREST's bulk rule)."""
    listed = request.query.get("columns")
    if listed is not None:
        return _columns(table, syntax.column_list(listed))
    if not rows:
        return []
    keys = list(rows[0])
    wanted = set(keys)
    if any(set(r) != wanted for r in rows[1:]):
        raise bad_body("All object keys must match", details="or pass ?columns= listing the union of the keys")
    return _columns(table, keys)


def _conflict_target(request: web.Request, table: Table) -> tuple[str, ...]:
    listed = request.query.get("on_conflict")
    if listed is None:
        return table.primary_key
    names = syntax.column_list(listed)
    _columns(table, names)
    return tuple(names)


async def _insert(
    request: web.Request, caller: Caller, table: Table, node: Node, prefer: Prefer, kind: Output
) -> web.StreamResponse:
    raw = await request.read()
    value = body.parse(raw)
    rows = [value] if isinstance(value, dict) else value
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise bad_body(details="an insert takes a JSON object or an array of objects")
    columns = _insert_columns(request, table, rows)
    target = _conflict_target(request, table) if prefer.resolution else None
    params = sql.Params()
    payload = f"{params.add(body.as_array_text(raw, value))}::jsonb"
    write = sql.insert_sql(
        node,
        columns,
        params,
        body=payload,
        missing_default=prefer.missing_default,
        on_conflict=target,
        resolution=prefer.resolution,
    )
    return await _run_write(request, caller, table, node, write, params, prefer, kind, status=201)


async def _update(
    request: web.Request, caller: Caller, table: Table, node: Node, prefer: Prefer, kind: Output
) -> web.StreamResponse:
    raw = await request.read()
    value = body.parse(raw)
    if not isinstance(value, dict):
        raise bad_body(details="an update takes one JSON object")
    listed = request.query.get("columns")
    names = syntax.column_list(listed) if listed is not None else list(value)
    columns = _columns(table, names)
    if not columns:
        return _write_response(request, prefer, kind, None, 0, status=200)
    params = sql.Params()
    payload = f"{params.add(body.text(raw))}::jsonb"
    write = sql.update_sql(node, columns, params, body=payload)
    return await _run_write(request, caller, table, node, write, params, prefer, kind, status=200)


async def _delete(request: web.Request, caller: Caller, node: Node, prefer: Prefer, kind: Output) -> web.StreamResponse:
    params = sql.Params()
    write = sql.delete_sql(node, params)
    return await _run_write(request, caller, None, node, write, params, prefer, kind, status=200)


async def _run_write(
    request: web.Request,
    caller: Caller,
    table: Table | None,
    node: Node,
    write: str,
    params: sql.Params,
    prefer: Prefer,
    kind: Output,
    *,
    status: int,
) -> web.StreamResponse:
    """One statement; a singular request that touches other than one row rolls back (PostgREST does the same)."""
    location: str | None = None
    text: str | None = None
    async with transaction(caller, prefer, read_only=False, single_statement=kind != "singular") as conn:
        if prefer.returning == "representation":
            statement = sql.write_statement(write, node, params, csv=kind == "csv")
            row = await conn.fetchrow(statement, *params.values)
            text, count = row["body"], int(row["page"])
        elif prefer.returning == "headers-only" and table is not None and table.primary_key:
            keys = ", ".join(f"{sql.ident(node.alias)}.{sql.ident(c)}::text" for c in table.primary_key)
            found = await conn.fetch(f"{write} RETURNING {keys}", *params.values)
            count = len(found)
            if found:
                filters = "&".join(
                    f"{quote(c)}=eq.{quote(str(v))}" for c, v in zip(table.primary_key, found[0], strict=True)
                )
                location = f"/{quote(table.name)}?{filters}"
        else:
            tag = await conn.execute(write, *params.values)
            count = int(tag.rsplit(" ", 1)[-1]) if tag and tag.rsplit(" ", 1)[-1].isdigit() else 0
        if kind == "singular" and count != 1:
            raise singular(count)
        if request.method in ("PATCH", "DELETE"):
            check_affected(prefer, count)
    headers = {"Location": location} if location else {}
    return _write_response(request, prefer, kind, text, count, status=status, headers=headers)


def _write_response(
    request: web.Request,
    prefer: Prefer,
    kind: Output,
    text: str | None,
    count: int,
    *,
    status: int,
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    """201 (POST) or 204 without a body; with return=representation the rows, 201 for POST and 200 otherwise."""
    headers = dict(headers or {})
    headers["Content-Range"] = f"*/{count}" if prefer.count else "*/*"
    if prefer.returning != "representation":
        return web.Response(status=201 if request.method == "POST" else 204, headers=headers)
    return respond(request, kind, text if text is not None else "[]", count, status, headers)
