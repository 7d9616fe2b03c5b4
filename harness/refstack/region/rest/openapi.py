"""`GET /rest/v1/`: the OpenAPI (Swagger 2.0) document PostgREST serves for the exposed schema.

Built as PostgREST 12 builds it (Response/OpenAPI.hs) in its default `openapi-mode = follow-privileges`: the
tables, views and functions are those the caller's role can reach, asked of Postgres as that role in the request's
own read-only transaction (PostgREST's accessibleTables / accessibleFuncs: any table or column privilege, or
EXECUTE), so anon sees what anon may touch and service_role everything. From the schema cache come each table's
columns in order, types, NOT NULL (→ `required`), defaults, primary key and foreign keys (noted in the column's
description as `<pk/>` / `<fk table=… column=…/>`); from the catalog, comments, enum labels, varchar lengths and
whether a view can be written (which decides POST/PATCH/DELETE on its path). Volatile functions are POST only.

The one deviation: `host`, `schemes` and `basePath` name where the request came in (`/rest/v1/`), as PostgREST
does when `openapi-server-proxy-uri` points at the gateway, so a generated client works against this stack.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from harness.refstack.region.rest.errors import ApiError
from harness.refstack.region.rest.schema_cache import SCHEMA, Column, SchemaCache, Table
from harness.refstack.region.rest.session import Caller

POSTGREST_VERSION = "12.2.3"
OPENAPI_TYPE = "application/openapi+json"
_MIME = ["application/json", "application/vnd.pgrst.object+json;nulls=stripped", "application/vnd.pgrst.object+json"]

# PostgREST's accessibleTables, plus what the document shows of each (comments, enum labels, varchar lengths,
# whether a view is writable).
_TABLES = """
select c.relname,
  obj_description(c.oid, 'pg_class') as description,
  c.relkind in ('r', 'p') or (pg_relation_is_updatable(c.oid::regclass, true) & 8) = 8 as insertable,
  c.relkind in ('r', 'p') or (pg_relation_is_updatable(c.oid::regclass, true) & 4) = 4 as updatable,
  c.relkind in ('r', 'p') or (pg_relation_is_updatable(c.oid::regclass, true) & 16) = 16 as deletable,
  coalesce((select json_object_agg(a.attname, json_build_object(
      'description', col_description(c.oid, a.attnum),
      'max_length', case when a.atttypid in ('varchar'::regtype, 'bpchar'::regtype) and a.atttypmod > 4
                      then a.atttypmod - 4 end,
      'enum', (select json_agg(e.enumlabel order by e.enumsortorder) from pg_enum e where e.enumtypid = a.atttypid)))
    from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '{}')::text as columns
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relkind in ('v', 'r', 'm', 'f', 'p') and not c.relispartition
  and (pg_has_role(c.relowner, 'USAGE')
    or has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
    or has_any_column_privilege(c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))
order by c.relname
"""
# PostgREST's accessibleFuncs: plain functions the role may EXECUTE, triggers left out.
_FUNCTIONS = """
select p.proname, obj_description(p.oid, 'pg_proc') as description, p.provolatile::text as volatility,
  coalesce(p.proargnames, '{}') as names,
  coalesce(p.proargmodes::text[], array_fill('i'::text, array[p.pronargs::int])) as modes,
  array(select format_type(x, null) from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]))
        with ordinality u(x, i) order by i) as types,
  p.pronargs, p.pronargdefaults
from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_type rt on rt.oid = p.prorettype
where n.nspname = $1 and p.prokind = 'f' and rt.typname not in ('trigger', 'event_trigger')
  and has_function_privilege(p.oid, 'execute')
order by p.proname, p.oid
"""
_SCHEMA_DESCRIPTION = "select obj_description($1::regnamespace, 'pg_namespace')"

_STRINGS = {"character varying", "character", "text"}
_INTEGERS = {"smallint": "int32", "integer": "int32", "bigint": "int64"}
_NUMBERS = {"numeric", "real", "double precision"}


def _swagger_type(pg_type: str) -> str | None:
    """PostgREST's toSwaggerType: json/jsonb have none, arrays are arrays, anything unknown is a string."""
    if pg_type in ("json", "jsonb"):
        return None
    if pg_type == "boolean":
        return "boolean"
    if pg_type in _INTEGERS:
        return "integer"
    if pg_type in _NUMBERS:
        return "number"
    if pg_type.endswith("[]"):
        return "array"
    return "string"


def _format(pg_type: str) -> str:
    return _INTEGERS.get(pg_type, pg_type)


def _default(column: Column) -> Any:
    """PostgREST's parseDefault: a string column's default without its cast and quotes; others as JSON, or none."""
    raw = column.default
    if raw is None:
        return None
    if _swagger_type(column.type) == "string":
        suffix = f"::{column.type}"
        return raw[: -len(suffix)].strip("'") if raw.endswith(suffix) else raw
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _property(table: Table, column: Column, extra: dict[str, Any], fks: dict[str, tuple[str, str]]) -> dict[str, Any]:
    notes = ["Note:"]
    if column.name in table.primary_key:
        notes.append("This is a Primary Key.<pk/>")
    if column.name in fks:
        ref, ref_column = fks[column.name]
        notes.append(f"This is a Foreign Key to `{ref}.{ref_column}`.<fk table='{ref}' column='{ref_column}'/>")
    description = extra.get("description")
    if len(notes) > 1:
        description = (f"{description}\n\n" if description else "") + "\n".join(notes)
    prop: dict[str, Any] = {}
    if (default := _default(column)) is not None:
        prop["default"] = default
    if description is not None:
        prop["description"] = description
    if extra.get("enum"):
        prop["enum"] = extra["enum"]
    prop["format"] = _format(column.type)
    if extra.get("max_length") is not None:
        prop["maxLength"] = extra["max_length"]
    if (kind := _swagger_type(column.type)) is not None:
        prop["type"] = kind
    if kind == "array" and (item := _swagger_type(column.type[:-2])) is not None:
        prop["items"] = {"type": item}
    return prop


def _header_param(name: str, description: str, enum: list[str] | None = None) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "description": description, "required": False, "in": "header"}
    param["type"] = "string"
    if enum:
        param["enum"] = enum
    return param


def _query_param(name: str, description: str | None) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "required": False, "in": "query", "type": "string"}
    if description is not None:
        param["description"] = description
    return param


_RETURN = ["return=representation", "return=minimal", "return=none"]
_COMMON_PARAMS: dict[str, dict[str, Any]] = {
    "preferParams": _header_param("Prefer", "Preference"),
    "preferReturn": _header_param("Prefer", "Preference", _RETURN),
    "preferCount": _header_param("Prefer", "Preference", ["count=none"]),
    "preferPost": _header_param(
        "Prefer", "Preference", [*_RETURN, "resolution=ignore-duplicates", "resolution=merge-duplicates"]
    ),
    "select": _query_param("select", "Filtering Columns"),
    "on_conflict": _query_param("on_conflict", "On Conflict"),
    "order": _query_param("order", "Ordering"),
    "range": _header_param("Range", "Limiting and Pagination"),
    "rangeUnit": {**_header_param("Range-Unit", "Limiting and Pagination"), "default": "items"},
    "offset": _query_param("offset", "Limiting and Pagination"),
    "limit": _query_param("limit", "Limiting and Pagination"),
}


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/{kind}/{name}"}


def _summary(description: str | None) -> tuple[str | None, str | None]:
    """The first line of a comment is the summary, the rest (leading newlines dropped) the description."""
    if description is None:
        return None, None
    first, _, rest = description.partition("\n")
    return first, rest.lstrip("\n") or None


def _table_path(table: Table, row: Any, filters: list[str]) -> dict[str, Any]:
    summary, description = _summary(row["description"])
    base: dict[str, Any] = {"tags": [table.name]}
    if summary is not None:
        base["summary"] = summary
    if description:
        base["description"] = description
    refs = [_ref("parameters", f) for f in filters]
    ok = {"description": "OK", "schema": {"type": "array", "items": _ref("definitions", table.name)}}
    get_names = ["select", "order", "range", "rangeUnit", "offset", "limit", "preferCount"]
    item: dict[str, Any] = {
        "get": {
            **base,
            "parameters": refs + [_ref("parameters", n) for n in get_names],
            "responses": {"200": ok, "206": {"description": "Partial Content"}},
        }
    }
    if row["insertable"] or row["updatable"] or row["deletable"]:
        body = _ref("parameters", f"body.{table.name}")
        item["post"] = {
            **base,
            "parameters": [body, _ref("parameters", "select"), _ref("parameters", "preferPost")],
            "responses": {"201": {"description": "Created"}},
        }
        item["patch"] = {
            **base,
            "parameters": [*refs, body, _ref("parameters", "preferReturn")],
            "responses": {"204": {"description": "No Content"}},
        }
        item["delete"] = {
            **base,
            "parameters": [*refs, _ref("parameters", "preferReturn")],
            "responses": {"204": {"description": "No Content"}},
        }
    return item


def _proc_param(name: str, pg_type: str) -> dict[str, Any]:
    prop: dict[str, Any] = {"format": _format(pg_type)}
    if (kind := _swagger_type(pg_type)) is not None:
        prop["type"] = kind
    if kind == "array" and (item := _swagger_type(pg_type[:-2])) is not None:
        prop["items"] = {"type": item}
    return prop


def _function_path(row: Any) -> dict[str, Any]:
    names, modes, types = list(row["names"]), list(row["modes"]), list(row["types"])
    inputs = [
        (names[i] if i < len(names) else "", types[i], mode == "v")
        for i, mode in enumerate(modes)
        if mode in ("i", "b", "v")
    ]
    first_optional = row["pronargs"] - row["pronargdefaults"]
    params = [(name, pg_type, i < first_optional, variadic) for i, (name, pg_type, variadic) in enumerate(inputs)]
    summary, description = _summary(row["description"])
    op: dict[str, Any] = {"tags": [f"(rpc) {row['proname']}"], "produces": _MIME}
    if summary is not None:
        op["summary"] = summary
    if description:
        op["description"] = description
    schema: dict[str, Any] = {"type": "object", "properties": {n: _proc_param(n, t) for n, t, _, _ in params}}
    if required := [n for n, _, r, _ in params if r]:
        schema["required"] = required
    if row["description"] is not None:
        schema["description"] = row["description"]
    post = {
        **op,
        "parameters": [
            {"name": "args", "required": True, "in": "body", "schema": schema},
            _ref("parameters", "preferParams"),
        ],
        "responses": {"200": {"description": "OK"}},
    }
    if row["volatility"] == "v":
        return {"post": post}
    get_params = []
    for name, pg_type, required_, variadic in params:
        param: dict[str, Any] = {"name": name, "required": required_, "in": "query"}
        kind = _swagger_type(pg_type)
        if variadic:
            param["type"] = kind or "string"
            param["collectionFormat"] = "multi"
            param["items"] = {"format": _format(pg_type[:-2]), **_without_none(type=_swagger_type(pg_type[:-2]))}
        else:
            param["format"] = _format(pg_type)
            param["type"] = "string" if kind in (None, "array") else kind
        get_params.append(param)
    return {"get": {**op, "parameters": get_params, "responses": {"200": {"description": "OK"}}}, "post": post}


def _without_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _accepts_openapi(request: web.Request) -> None:
    accept = request.headers.get("Accept", "").strip()
    if not accept:
        return
    offered = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    if not any(m in (OPENAPI_TYPE, "application/json", "*/*", "application/*") for m in offered):
        raise ApiError(406, "PGRST107", "None of these media types are available: " + ", ".join(offered))


async def document(request: web.Request, caller: Caller, cache: SchemaCache) -> web.Response:
    _accepts_openapi(request)
    async with caller.transaction(read_only=True) as conn:
        table_rows = await conn.fetch(_TABLES, SCHEMA)
        function_rows = await conn.fetch(_FUNCTIONS, SCHEMA)
        schema_description = await conn.fetchval(_SCHEMA_DESCRIPTION, SCHEMA)
    definitions: dict[str, Any] = {}
    parameters: dict[str, Any] = dict(_COMMON_PARAMS)
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "tags": ["Introspection"],
                "summary": "OpenAPI description (this document)",
                "produces": [OPENAPI_TYPE, "application/json"],
                "responses": {"200": {"description": "OK"}},
            }
        }
    }
    for row in table_rows:
        table = cache.tables.get(row["relname"])
        if table is None:  # created after the cache was loaded; the reload is on its way
            continue
        extras: dict[str, Any] = json.loads(row["columns"])
        fks = {
            fk.columns[0]: (fk.ref_table, fk.ref_columns[0])
            for fk in sorted(cache.foreign_keys, key=lambda f: cache.tables[f.ref_table].kind != "r")
            if fk.table == table.name and len(fk.columns) == 1
        }
        definition: dict[str, Any] = {}
        if row["description"] is not None:
            definition["description"] = row["description"]
        columns = list(table.columns.values())
        definition["properties"] = {c.name: _property(table, c, extras.get(c.name, {}), fks) for c in columns}
        if required := [c.name for c in columns if not c.nullable]:
            definition["required"] = required
        definition["type"] = "object"
        definitions[table.name] = definition
        parameters[f"body.{table.name}"] = {
            "name": table.name,
            "description": table.name,
            "required": False,
            "in": "body",
            "schema": _ref("definitions", table.name),
        }
        filters = []
        for column in columns:
            key = f"rowFilter.{table.name}.{column.name}"
            parameters[key] = _query_param(column.name, extras.get(column.name, {}).get("description"))
            filters.append(key)
        paths[f"/{table.name}"] = _table_path(table, row, filters)
    for row in function_rows:
        paths[f"/rpc/{row['proname']}"] = _function_path(row)
    title, description = _summary(schema_description)
    doc = {
        "swagger": "2.0",
        "info": {
            "description": "This is a dynamic API generated by PostgREST"
            if schema_description is None
            else description or "",
            "title": title or "PostgREST API",
            "version": POSTGREST_VERSION,
        },
        "host": request.host,
        "basePath": "/rest/v1/",
        "schemes": [request.scheme],
        "consumes": [*_MIME, "text/csv"],
        "produces": [*_MIME, "text/csv"],
        "paths": paths,
        "definitions": definitions,
        "parameters": parameters,
        "externalDocs": {
            "description": "PostgREST Documentation",
            "url": "https://postgrest.org/en/v12/references/api.html",
        },
    }
    body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return web.Response(
        body=None if request.method == "HEAD" else body.encode(),
        headers={"Content-Type": f"{OPENAPI_TYPE}; charset=utf-8"},
    )
