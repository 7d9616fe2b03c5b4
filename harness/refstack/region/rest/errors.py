"""PostgREST's error shape `{code, details, hint, message}` and its HTTP statuses (PostgREST's Error.hs).

Two sources of errors: `ApiError` raised by this package before any SQL runs (PGRST1xx request errors, PGRST2xx
schema-cache errors, PGRST3xx JWT errors), and `asyncpg.PostgresError` from the statement itself, whose SQLSTATE
maps to a status with `status_for_sqlstate` exactly as PostgREST's `mapSQLtoHTTP` does.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

JSON_UTF8 = "application/json; charset=utf-8"


class ApiError(Exception):
    """An error PostgREST itself raises: the body's four keys and the HTTP status."""

    def __init__(self, status: int, code: str, message: str, *, details: Any = None, hint: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "details": self.details, "hint": self.hint, "message": self.message}


def bad_query(message: str, details: str | None = None) -> ApiError:
    """PGRST100: the query string does not parse (a filter, select, order, limit or offset)."""
    return ApiError(400, "PGRST100", message, details=details)


def bad_body(message: str = "Empty or invalid json", details: str | None = None) -> ApiError:
    """PGRST102: the request body is not the JSON this request needs."""
    return ApiError(400, "PGRST102", message, details=details)


def column_not_found(table: str, column: str) -> ApiError:
    return ApiError(400, "PGRST204", f"Could not find the '{column}' column of '{table}' in the schema cache")


def table_not_found(schema: str, table: str) -> ApiError:
    return ApiError(404, "PGRST205", f"Could not find the table '{schema}.{table}' in the schema cache")


def undefined_column(table: str, column: str) -> ApiError:
    """What Postgres answers (42703) for a filter, order or select on a column the table lacks; never sent as SQL."""
    return ApiError(400, "42703", f"column {table}.{column} does not exist")


def singular(rows: int) -> ApiError:
    return ApiError(
        406,
        "PGRST116",
        "JSON object requested, multiple (or no) rows returned",
        details=f"The result contains {rows} rows",
    )


def jwt_invalid(message: str) -> ApiError:
    return ApiError(401, "PGRST301", message)


_STATUS_BY_SQLSTATE = {
    "23503": 409,
    "23505": 409,
    "25006": 405,
    "53400": 500,
    "57P01": 503,
    "P0001": 400,
    "42883": 404,
    "42P01": 404,
    "42P17": 500,
    "21000": 500,
}
_STATUS_BY_CLASS = {
    "08": 503,
    "09": 500,
    "0L": 403,
    "0P": 403,
    "25": 500,
    "28": 403,
    "2D": 500,
    "38": 500,
    "39": 500,
    "3B": 500,
    "40": 500,
    "53": 503,
    "54": 500,
    "55": 500,
    "57": 500,
    "58": 500,
    "F0": 500,
    "HV": 500,
    "P0": 500,
    "XX": 500,
}


def status_for_sqlstate(sqlstate: str, message: str, *, authenticated: bool) -> int:
    """PostgREST's `mapSQLtoHTTP`: 42501 is 401 for anon and 403 otherwise; a JWT role that does not exist is 401."""
    if sqlstate == "42501":
        return 403 if authenticated else 401
    if sqlstate == "22023":
        return 401 if message.startswith("role") and message.endswith("does not exist") else 400
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:]) if 100 <= int(sqlstate[2:]) <= 599 else 500
    status = _STATUS_BY_SQLSTATE.get(sqlstate)
    if status is not None:
        return status
    return _STATUS_BY_CLASS.get(sqlstate[:2], 400)


def from_postgres(error: asyncpg.PostgresError, *, authenticated: bool) -> ApiError:
    sqlstate = error.sqlstate or "XX000"
    message = str(error.args[0]) if error.args else str(error)
    status = status_for_sqlstate(sqlstate, message, authenticated=authenticated)
    return ApiError(
        status,
        sqlstate,
        message,
        details=getattr(error, "detail", None),
        hint=getattr(error, "hint", None),
    )


def response(error: ApiError) -> web.Response:
    """The JSON error response; a 401 carries `WWW-Authenticate: Bearer` as PostgREST sends it."""
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return web.json_response(error.body(), status=error.status, headers=headers, content_type="application/json")
