"""GoTrue's error: an HTTP status, an error code and a message, in the shape the request's API version asks for.

    X-Supabase-Api-Version: 2024-01-01   {"code": "<error_code>", "message": …}, the header echoed
    no version header (legacy)           {"code": <status>, "error_code": "<error_code>", "msg": …}

Both carry `x-sb-error-code` (docs/protocols.md §2.4).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

API_VERSION_HEADER = "X-Supabase-Api-Version"
API_VERSION = "2024-01-01"


class AuthError(Exception):
    """A GoTrue error: HTTP status, error code, message, and extra body fields (e.g. `weak_password`)."""

    def __init__(self, status: int, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}


def error_response(request: web.Request, error: AuthError) -> web.Response:
    headers = {"x-sb-error-code": error.code}
    if request.headers.get(API_VERSION_HEADER):
        headers[API_VERSION_HEADER] = API_VERSION
        body: dict[str, Any] = {"code": error.code, "message": error.message, **error.extra}
    else:
        body = {"code": error.status, "error_code": error.code, "msg": error.message, **error.extra}
    return web.json_response(body, status=error.status, headers=headers)
