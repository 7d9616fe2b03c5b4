"""PostgREST at `/rest/v1` (docs/protocols.md §3) on the region's PostgreSQL.

    request ─► Kong key-auth (apikey) ─► JWT (session.py) ─► schema cache lookup (schema_cache.py)
            ─► query string parsed (syntax.py) and resolved against the cache (plan.py)
            ─► ONE parameterised statement (sql.py) in the caller's transaction, its JSON body built by Postgres
            ─► the body as Postgres built it, with Content-Range (tables.py, rpc.py)

    /rest/v1/                   GET, HEAD: the OpenAPI document of what the caller's role can reach (openapi.py)
    /rest/v1/<table>            GET, HEAD, POST (insert, upsert), PATCH, DELETE
    /rest/v1/rpc/<function>     GET, HEAD, POST

Every failure answers PostgREST's `{code, details, hint, message}` with its status (errors.py): request errors
before any SQL runs, and Postgres's own SQLSTATEs mapped as PostgREST maps them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web

from harness.refstack.region.auth import gateway_key_error
from harness.refstack.region.rest import errors, openapi, rpc, schema_cache, session, tables
from harness.refstack.region.rest.errors import ApiError
from harness.refstack.region.rest.schema_cache import CACHE, SCHEMA, reload

__all__ = ["reload", "setup"]

log = logging.getLogger(__name__)
Route = Callable[[web.Request, session.Caller, schema_cache.SchemaCache], Awaitable[web.StreamResponse]]


async def _serve(request: web.Request, route: Route) -> web.StreamResponse:
    rejected = gateway_key_error(request)
    if rejected is not None:
        return rejected
    caller: session.Caller | None = None
    try:
        caller = session.caller(request)
        session.check_query_text(request)
        cache = request.app.get(CACHE)
        if cache is None:
            raise ApiError(503, "PGRST002", "Could not query the database for the schema cache. Retrying.")
        return await route(request, caller, cache)
    except ApiError as exc:
        return errors.response(exc)
    except asyncpg.PostgresError as exc:
        return errors.response(errors.from_postgres(exc, authenticated=caller is not None and caller.authenticated))
    except (OSError, asyncpg.InterfaceError) as exc:
        log.warning("rest: database unavailable: %s", exc)
        return errors.response(ApiError(503, "PGRST001", "Database client error. Retrying the connection."))


async def _table(request: web.Request) -> web.StreamResponse:
    async def route(
        request: web.Request, caller: session.Caller, cache: schema_cache.SchemaCache
    ) -> web.StreamResponse:
        name = request.match_info["table"]
        table = cache.tables.get(name)
        if table is None:
            raise errors.table_not_found(SCHEMA, name)
        return await tables.handle(request, caller, cache, table)

    return await _serve(request, route)


async def _rpc(request: web.Request) -> web.StreamResponse:
    async def route(
        request: web.Request, caller: session.Caller, cache: schema_cache.SchemaCache
    ) -> web.StreamResponse:
        return await rpc.handle(request, caller, cache, request.match_info["function"])

    return await _serve(request, route)


async def _root(request: web.Request) -> web.StreamResponse:
    return await _serve(request, openapi.document)


def setup(app: web.Application) -> None:
    for path in ("/rest/v1/", "/rest/v1"):
        app.router.add_get(path, _root)  # GET and HEAD
    for method in ("GET", "HEAD", "POST"):
        app.router.add_route(method, "/rest/v1/rpc/{function}", _rpc)
    for method in ("GET", "HEAD", "POST", "PATCH", "DELETE"):
        app.router.add_route(method, "/rest/v1/{table}", _table)
    schema_cache.setup(app)
