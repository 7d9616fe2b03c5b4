"""`/rest/v1/rpc/<function>`: call a function of the exposed schema, PostgREST's way.

    GET/HEAD   arguments from the query string (`?a=1&b=x`), read-only transaction
    POST       named arguments from a JSON object (`{"a": 1}`), or the whole body for a function whose single
               parameter is unnamed json/jsonb, or with `Prefer: params=single-object`; read-only when the
               function is STABLE or IMMUTABLE

The overload is chosen by argument names (those with defaults may be left out); none matching is 404 PGRST202.
A function returning rows (SETOF table, TABLE(...), OUT parameters, a composite) takes `select`, filters, `order`,
`limit` on its result, and can embed when it returns a table's rows; a scalar answers its JSON value (`3`), a set
of scalars an array (`[1,2]`), a void function 204.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from harness.refstack.region.rest import body, negotiation, sql, tables
from harness.refstack.region.rest.errors import ApiError, bad_body
from harness.refstack.region.rest.plan import RESERVED, Planner
from harness.refstack.region.rest.schema_cache import SCHEMA, Column, Function, SchemaCache
from harness.refstack.region.rest.session import Caller


async def handle(request: web.Request, caller: Caller, cache: SchemaCache, name: str) -> web.StreamResponse:
    prefer = negotiation.prefer(request)
    kind = negotiation.output(request)
    overloads = cache.functions.get(name, [])
    params = sql.Params()
    ctes = ""
    query_keys = [k for k in dict.fromkeys(request.query) if k not in RESERVED]
    if request.method in tables.READ_METHODS:
        function, args = _choose_for_query(name, overloads, query_keys)
        call_args = [
            f"{sql.ident(p.name)} := {params.text(request.query[p.name])}::{p.type}"
            for p in function.params
            if p.name in args
        ]
        filters = [(k, v) for k, v in request.query.items() if k not in args]
        read_only = True
    else:
        raw = await request.read()
        value: Any = body.parse(raw) if raw.strip() else {}
        function, call_args, ctes = _call_from_body(name, overloads, raw, value, prefer.single_object, params)
        filters = list(request.query.items())
        read_only = not function.volatile
    call = f"{sql.qualified(function.name)}({', '.join(call_args)})"
    prefer.check_strict()
    if prefer.guards_affected and not function.returns_set:
        raise ApiError(
            400,
            "PGRST128",
            "Function must return SETOF or TABLE when max-affected preference is used with handling=strict",
        )
    applied = prefer.applied("call")
    if function.returns_void:
        async with tables.transaction(caller, prefer, read_only=read_only) as conn:
            await conn.execute(f"{'WITH ' + ctes.rstrip(', ') + ' ' if ctes else ''}SELECT {call}", *params.values)
        return tables.with_applied(web.Response(status=204), applied)
    planner = Planner(cache)
    scalar: str | None = None
    if function.returns_rows:
        node = planner.root(function.name, function.columns, request.query.get("select"), table=function.return_table)
        source = call
    else:
        scalar = function.name
        columns = {scalar: Column(scalar, function.return_type)}
        node = planner.root(function.name, columns, None)
        source = f"(SELECT {call} AS {sql.ident(scalar)})"
    planner.apply_params(node, filters)
    response = await tables.read(
        request,
        caller,
        node,
        source=source,
        prefer=prefer,
        kind=kind,
        scalar=scalar,
        ctes=ctes,
        params=params,
        read_only=read_only,
        object_result=not function.returns_set,
    )
    return tables.with_applied(response, applied)


def _choose_for_query(name: str, overloads: list[Function], keys: list[str]) -> tuple[Function, set[str]]:
    """GET: the query keys naming parameters are arguments; the rest filter a row-returning result."""
    candidates: list[tuple[Function, set[str]]] = []
    for function in overloads:
        names = {p.name for p in function.params}
        args = {k for k in keys if k in names}
        others = [k for k in keys if k not in names]
        if function.required() <= args and (function.returns_rows or not others):
            candidates.append((function, args))
    return _one(name, candidates, keys)


def _call_from_body(
    name: str, overloads: list[Function], raw: bytes, value: Any, single_object: bool, params: sql.Params
) -> tuple[Function, list[str], str]:
    """POST: named arguments read from the JSON object by Postgres (jsonb_to_record with the parameters' types)."""
    whole = [f for f in overloads if len(f.params) == 1 and f.params[0].type in ("json", "jsonb")]
    unnamed = [f for f in whole if not f.params[0].name]
    if unnamed or (single_object and whole):
        function = (unnamed or whole)[0]
        return function, [f"{params.text(body.text(raw) if raw.strip() else '{}')}::{function.params[0].type}"], ""
    if not isinstance(value, dict):
        raise bad_body(details="an rpc call takes a JSON object of named arguments")
    keys = list(value)
    candidates = [
        (f, set(keys))
        for f in overloads
        if f.required() <= set(keys) <= {p.name for p in f.params} and all(p.name for p in f.params)
    ]
    function, _ = _one(name, candidates, keys)
    given = [p for p in function.params if p.name in value]
    if not given:
        return function, [], ""
    record = ", ".join(f"{sql.ident(p.name)} {p.type}" for p in given)
    ctes = f"_pgrst_args AS (SELECT * FROM jsonb_to_record({params.text(body.text(raw))}::jsonb) AS _a({record})), "
    args = [f"{sql.ident(p.name)} := (SELECT {sql.ident(p.name)} FROM _pgrst_args)" for p in given]
    return function, args, ctes


def _one(name: str, candidates: list[tuple[Function, set[str]]], keys: list[str]) -> tuple[Function, set[str]]:
    if not candidates:
        listed = ", ".join(keys)
        signature = f"({listed})" if keys else " without parameters"
        searched = f" with parameter{'s' if len(keys) > 1 else ''} {listed}" if keys else " without parameters"
        raise ApiError(
            404,
            "PGRST202",
            f"Could not find the function {SCHEMA}.{name}{signature} in the schema cache",
            details=f"Searched for the function {SCHEMA}.{name}{searched} or with a single unnamed json/jsonb "
            "parameter, but no matches were found in the schema cache.",
        )
    best = max(len(args) for _, args in candidates)
    top = [c for c in candidates if len(c[1]) == best]
    if len(top) > 1:
        signatures = ", ".join(
            f"{SCHEMA}.{f.name}(" + ", ".join(f"{p.name} => {p.type}" for p in f.params) + ")" for f, _ in top
        )
        raise ApiError(
            300,
            "PGRST203",
            f"Could not choose the best candidate function between: {signatures}",
            hint="Try renaming the parameters or the function itself in the database so function overloading can "
            "be resolved",
        )
    return top[0]
