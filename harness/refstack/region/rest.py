"""PostgREST at `/rest/v1/<table>` (docs/protocols.md §3) over the four app tables, with the app's row-level access.

    request ─► Kong key-auth (apikey) ─► JWT (Authorization, else the apikey: Kong's rewrite) ─► role + sub
            ─► parse query (select, filters, order, limit, offset, columns, on_conflict) and Prefer
            ─► Database select/insert/update/delete with rls predicates and WITH CHECK ─► JSON + Content-Range

Every failure is a `DbError` (a SQLSTATE or PGRST code) rendered by `_error_response` with the status of §3.3.
Supported: `select=` with `*`, column lists and `alias:column`; filters eq, neq, gt, gte, lt, lte, in, is, like,
ilike and `not.`; multi-column `order` with nullsfirst/nullslast; `limit`/`offset`; `Prefer: return=…, count=exact,
resolution=merge-duplicates|ignore-duplicates, missing=default`; singular responses. Not supported (PGRST100):
embedded resources, `or=`/`and=` logic trees, JSON paths.

Idempotent send: a retried insert of a message with the same (sender_id, client_msg_id) answers 409 23505 (or,
with `resolution=ignore-duplicates` and `on_conflict=sender_id,client_msg_id`, 201 with no new row). Clients
treat either as "already delivered", which makes message sends safe to retry.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from harness.model.keys import Claims, TokenError
from harness.refstack.region import rls
from harness.refstack.region.auth import gateway_key_error, verify_token
from harness.refstack.region.db import Database, DbError, Filter, Order, Predicate, coerce
from harness.refstack.region.schema import PUBLIC_TABLES, Table
from harness.refstack.region.state import CONFIG, DB, MEMBERSHIP, api_key, bearer_token

SINGULAR_TYPE = "application/vnd.pgrst.object+json"
JSON_TYPE = "application/json"
_RESERVED = frozenset({"select", "order", "limit", "offset", "columns", "on_conflict", "apikey"})
_COMPARE_OPS = frozenset({"eq", "neq", "gt", "gte", "lt", "lte"})
_STATUS_BY_CODE = {
    "23505": 409,
    "23503": 409,
    "42P01": 404,
    "42883": 404,
    "P0001": 400,
    "25006": 405,
    "PGRST116": 406,
    "PGRST205": 404,
    "PGRST301": 401,
    "PGRST302": 401,
}


# -- request parsing ------------------------------------------------------------------------------------------------
@dataclass
class Prefer:
    representation: bool = False
    count: bool = False
    resolution: Literal["merge", "ignore"] | None = None
    missing_default: bool = False


def _prefer(request: web.Request) -> Prefer:
    prefer = Prefer()
    for header in request.headers.getall("Prefer", ()):
        for item in header.split(","):
            key, _, value = item.strip().partition("=")
            if key == "return":
                prefer.representation = value == "representation"
            elif key == "count":
                prefer.count = value in ("exact", "planned", "estimated")
            elif key == "resolution":
                prefer.resolution = {"merge-duplicates": "merge", "ignore-duplicates": "ignore"}.get(value)  # type: ignore[assignment]
            elif key == "missing":
                prefer.missing_default = value == "default"
    return prefer


def _bad_query(message: str, details: str | None = None) -> DbError:
    return DbError("PGRST100", message, details=details)


def _column(table: Table, name: str) -> str:
    if name not in table.by_name:
        raise DbError("42703", f"column {table.name}.{name} does not exist")
    return name


def _split_list(text: str) -> list[str]:
    """`a,"b,c",d` → [a, b,c, d]: PostgREST's list syntax, with double quotes protecting commas."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            quoted = not quoted
        elif ch == "\\" and quoted and i + 1 < len(text):
            i += 1
            current.append(text[i])
        elif ch == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    if quoted:
        raise _bad_query(f'"failed to parse list ({text})"', "unterminated double quote")
    items.append("".join(current))
    return items


def _filter(table: Table, key: str, raw: str) -> Filter:
    column = table.by_name.get(key)
    if column is None:
        if key in ("or", "and", "not.or", "not.and"):
            raise _bad_query(f"logic trees ({key}=) are not supported by this reference stack", f"{key}={raw}")
        raise DbError("42703", f"column {table.name}.{key} does not exist")
    op, _, value = raw.partition(".")
    negate = op == "not"
    if negate:
        op, _, value = value.partition(".")
    if op in _COMPARE_OPS:
        return Filter(key, op, coerce(column, value, from_text=True), negate)  # type: ignore[arg-type]
    if op == "in":
        if not (value.startswith("(") and value.endswith(")")):
            raise _bad_query(f'"failed to parse filter ({raw})"', "in. takes a parenthesised list, e.g. in.(1,2,3)")
        items = _split_list(value[1:-1]) if len(value) > 2 else []
        return Filter(key, "in", [coerce(column, v, from_text=True) for v in items], negate)
    if op == "is":
        values = {"null": None, "unknown": None, "true": 1, "false": 0}
        if value.lower() not in values:
            raise _bad_query(f'"failed to parse filter ({raw})"', "is. takes null, true, false or unknown")
        return Filter(key, "is", values[value.lower()], negate)
    if op in ("like", "ilike"):
        return Filter(key, op, value.replace("*", "%"), negate)  # type: ignore[arg-type]
    raise _bad_query(
        f'"failed to parse filter ({raw})"',
        f"unknown operator {op!r}; valid: eq, neq, gt, gte, lt, lte, in, is, like, ilike, optionally after not.",
    )


def _select_columns(table: Table, raw: str | None) -> tuple[list[str] | None, dict[str, str]]:
    """`select=` → (columns to read, or None for all; {column: output name} for aliases)."""
    if raw is None or raw.strip() in ("", "*"):
        return None, {}
    if "(" in raw or ")" in raw:
        raise _bad_query(
            f'"failed to parse select parameter ({raw})"',
            "embedded resources (e.g. profiles(*)) are not supported by this reference stack; select plain columns",
        )
    columns: list[str] = []
    aliases: dict[str, str] = {}
    for item in raw.split(","):
        item = item.strip()
        if item == "*":
            columns.extend(c.name for c in table.columns)
            continue
        alias, sep, name = item.partition(":")
        if not sep:
            alias, name = item, item
        name = name.split("::", 1)[0]  # casts are accepted and ignored
        _column(table, name)
        columns.append(name)
        if alias != name:
            aliases[name] = alias
    return list(dict.fromkeys(columns)), aliases


def _order(table: Table, raw: str) -> list[Order]:
    orders: list[Order] = []
    for term in raw.split(","):
        name, *modifiers = term.strip().split(".")
        _column(table, name)
        descending = False
        nulls_first: bool | None = None
        for modifier in modifiers:
            if modifier in ("asc", "desc"):
                descending = modifier == "desc"
            elif modifier in ("nullsfirst", "nullslast"):
                nulls_first = modifier == "nullsfirst"
            else:
                raise _bad_query(
                    f'"failed to parse order ({raw})"',
                    f"unknown modifier {modifier!r}; valid: asc, desc, nullsfirst, nullslast",
                )
        orders.append(Order(name, descending, nulls_first))
    return orders


def _non_negative(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value < 2**63:
        raise _bad_query(
            f'"failed to parse {name} parameter ({raw})"', f"{name} must be an integer from 0 to 9223372036854775807"
        )
    return value


@dataclass
class Query:
    table: Table
    columns: list[str] | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    filters: list[Filter] = field(default_factory=list)
    order: list[Order] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    insert_columns: list[str] | None = None
    on_conflict: list[str] | None = None


def _query(request: web.Request) -> Query:
    name = request.match_info["table"]
    if name not in PUBLIC_TABLES:
        raise DbError("PGRST205", f"Could not find the table 'public.{name}' in the schema cache")
    table = Database.table(name)
    query = Query(table)
    for key, raw in request.query.items():
        if key not in _RESERVED:
            query.filters.append(_filter(table, key, raw))
        elif key == "select":
            query.columns, query.aliases = _select_columns(table, raw)
        elif key == "order":
            query.order = _order(table, raw)
        elif key == "limit":
            query.limit = _non_negative("limit", raw)
        elif key == "offset":
            query.offset = _non_negative("offset", raw)
        elif key == "columns":
            query.insert_columns = [c.strip().strip('"') for c in raw.split(",") if c.strip()]
            for column in query.insert_columns:
                if column not in table.by_name:
                    raise DbError(
                        "PGRST204", f"Could not find the '{column}' column of '{table.name}' in the schema cache"
                    )
        elif key == "on_conflict":
            query.on_conflict = [_column(table, c.strip().strip('"')) for c in raw.split(",") if c.strip()]
    return query


def _claims(request: web.Request) -> Claims:
    """PostgREST reads only Authorization; without one, Kong's rewrite makes the apikey the bearer token."""
    token = bearer_token(request) or api_key(request) or ""
    try:
        return verify_token(token, request.app[CONFIG].jwt_secret)
    except TokenError as exc:
        message = "JWT expired" if exc.reason == "expired" else str(exc)
        raise DbError("PGRST301", message) from None


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise DbError("PGRST102", "Empty or invalid json", details=f"the body is not JSON ({len(raw)} bytes)") from None


# -- responses ------------------------------------------------------------------------------------------------------
def _project(rows: list[dict[str, Any]], query: Query) -> list[dict[str, Any]]:
    if query.columns is None:
        return rows
    out = [{c: r[c] for c in query.columns} for r in rows]
    if query.aliases:
        out = [{query.aliases.get(k, k): v for k, v in r.items()} for r in out]
    return out


def _singular(request: web.Request) -> bool:
    return SINGULAR_TYPE in request.headers.get("Accept", "")


def _not_one_row(count: int) -> DbError:
    return DbError(
        "PGRST116", "JSON object requested, multiple (or no) rows returned", details=f"The result contains {count} rows"
    )


def _rows_response(
    request: web.Request,
    rows: list[dict[str, Any]],
    *,
    status: int,
    content_range: str | None = None,
) -> web.Response:
    headers = {"Content-Range": content_range} if content_range else {}
    if _singular(request):
        if len(rows) != 1:
            raise _not_one_row(len(rows))
        body = json.dumps(rows[0], separators=(",", ":"))
        content_type = SINGULAR_TYPE
    else:
        body = json.dumps(rows, separators=(",", ":"))
        content_type = JSON_TYPE
    return web.Response(text=body, status=status, content_type=content_type, headers=headers)


def _error_response(error: DbError, claims: Claims | None) -> web.Response:
    status = _STATUS_BY_CODE.get(error.code)
    if status is None:
        if error.code == "42501":
            status = 403 if claims is not None and claims.role != "anon" else 401
        elif error.code.startswith("08"):
            status = 503
        else:
            status = 400
    body = {"code": error.code, "details": error.details, "hint": error.hint, "message": error.message}
    return web.json_response(body, status=status)


def _and(a: Predicate | None, b: Predicate | None) -> Predicate | None:
    if a is None or b is None:
        return a or b
    return Predicate(f"({a.sql}) AND ({b.sql})", a.params + b.params)


# -- handlers -------------------------------------------------------------------------------------------------------
async def _handle(request: web.Request) -> web.StreamResponse:
    rejected = gateway_key_error(request)
    if rejected is not None:
        return rejected
    claims: Claims | None = None
    try:
        claims = _claims(request)
        query = _query(request)
        if request.method in ("GET", "HEAD"):
            return _select(request, claims, query)
        if request.method == "POST":
            return _insert(request, claims, query, await _json_body(request))
        if request.method == "PATCH":
            return _update(request, claims, query, await _json_body(request))
        return _delete(request, claims, query)  # the routes admit only GET, HEAD, POST, PATCH and DELETE
    except DbError as exc:
        return _error_response(exc, claims)


def _select(request: web.Request, claims: Claims, query: Query) -> web.Response:
    prefer = _prefer(request)
    rows, total = request.app[DB].select_json(
        query.table.name,
        columns=query.columns,
        aliases=query.aliases,
        filters=query.filters,
        order=query.order,
        limit=query.limit,
        offset=query.offset,
        count=prefer.count,
        predicate=rls.read_predicate(claims, query.table.name),
    )
    shown = "*" if total is None else str(total)
    content_range = f"{query.offset}-{query.offset + len(rows) - 1}/{shown}" if rows else f"*/{shown}"
    status = 206 if total is not None and len(rows) < total else 200
    if _singular(request):
        if len(rows) != 1:
            raise _not_one_row(len(rows))
        return web.Response(
            text=rows[0], status=status, content_type=SINGULAR_TYPE, headers={"Content-Range": content_range}
        )
    return web.Response(
        text="[" + ",".join(rows) + "]", status=status, content_type=JSON_TYPE, headers={"Content-Range": content_range}
    )


def _insert(request: web.Request, claims: Claims, query: Query, body: Any) -> web.Response:
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
        raise DbError("PGRST102", "Empty or invalid json", details="insert takes a JSON object or an array of objects")
    prefer = _prefer(request)
    rows = _shape_rows(query, body, prefer)
    app = request.app
    db, membership = app[DB], app[MEMBERSHIP]
    table = query.table.name

    def creator_of(conversation_id: str) -> str | None:
        try:
            found = db.get("conversations", id=conversation_id)
        except DbError:
            return None
        return found["created_by"] if found else None

    def check(record: dict[str, Any]) -> bool:
        return rls.can_write(claims, table, "insert", record, membership, creator_of)

    if prefer.resolution == "merge" and rows:
        _check_merge_targets(db, claims, query, rows)
    inserted = db.insert(
        table, rows, on_conflict=prefer.resolution, conflict_columns=query.on_conflict or None, check=check
    )
    content_range = f"*/{len(inserted)}" if prefer.count else "*/*"
    if not prefer.representation:
        return web.Response(status=201, headers={"Content-Range": content_range})
    return _rows_response(request, _project(inserted, query), status=201, content_range=content_range)


def _shape_rows(query: Query, body: list[dict[str, Any]], prefer: Prefer) -> list[dict[str, Any]]:
    if query.insert_columns is not None:
        wanted = query.insert_columns
        if prefer.missing_default:
            return [{c: r[c] for c in wanted if c in r} for r in body]
        return [{c: r.get(c) for c in wanted} for r in body]
    if body:
        keys = set(body[0])
        if any(set(r) != keys for r in body[1:]):
            raise DbError("PGRST102", "All object keys must match", details="or pass ?columns= listing the union")
    return body


def _check_merge_targets(db: Database, claims: Claims, query: Query, rows: Sequence[dict[str, Any]]) -> None:
    """An upsert that would overwrite an existing row needs the UPDATE policy on that row, as in Postgres."""
    target = query.on_conflict or list(query.table.primary_key)
    allowed = rls.write_predicate(claims, query.table.name, "update")
    if allowed is None:
        return
    for row in rows:
        if not all(c in row for c in target):
            continue
        filters = [Filter(c, "eq", coerce(query.table.by_name[c], row[c])) for c in target]
        existing, _ = db.select(query.table.name, columns=list(target), filters=filters, limit=1)
        if existing:
            mine, _ = db.select(query.table.name, columns=list(target), filters=filters, predicate=allowed, limit=1)
            if not mine:
                raise DbError("42501", f'new row violates row-level security policy for table "{query.table.name}"')


def _update(request: web.Request, claims: Claims, query: Query, body: Any) -> web.Response:
    if not isinstance(body, dict):
        raise DbError("PGRST102", "Empty or invalid json", details="update takes one JSON object")
    app = request.app
    table = query.table.name
    membership = app[MEMBERSHIP]
    predicate = _and(rls.read_predicate(claims, table), rls.write_predicate(claims, table, "update"))
    if body:
        changed = app[DB].update(
            table,
            body,
            filters=query.filters,
            predicate=predicate,
            check=lambda record: rls.can_write(claims, table, "update", record, membership),
        )
    else:
        changed = []
    return _write_response(request, query, changed)


def _delete(request: web.Request, claims: Claims, query: Query) -> web.Response:
    table = query.table.name
    predicate = _and(rls.read_predicate(claims, table), rls.write_predicate(claims, table, "delete"))
    deleted = request.app[DB].delete(table, filters=query.filters, predicate=predicate)
    return _write_response(request, query, deleted)


def _write_response(request: web.Request, query: Query, rows: list[dict[str, Any]]) -> web.Response:
    prefer = _prefer(request)
    content_range = f"*/{len(rows)}" if prefer.count else "*/*"
    if not prefer.representation:
        return web.Response(status=204, headers={"Content-Range": content_range})
    return _rows_response(request, _project(rows, query), status=200, content_range=content_range)


def setup(app: web.Application) -> None:
    for method in ("GET", "HEAD", "POST", "PATCH", "DELETE"):
        app.router.add_route(method, "/rest/v1/{table}", _handle)
