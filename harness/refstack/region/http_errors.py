"""Errors aiohttp answers on its own (no route: 404; a route without that method: 405; a body over the app's size
limit: 413), rendered in the error shape of the service the path belongs to, as the gateway and service would:

    /rest/v1       PostgREST {code, details, hint, message}: PGRST125 invalid path (404), PGRST117 method (405)
    /auth/v1       GoTrue's shape (auth_errors.py) with not_found, method_not_allowed, request_entity_too_large
    /storage/v1    Storage {statusCode, code, error, message}
    /functions/v1  {"error": …}
    anything else  Kong's {"message": …} ("no Route matched with those values" for a path nothing serves)

aiohttp's own answers are text/plain; anything a handler raised with a JSON body of its own passes untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from harness.refstack.region.auth_errors import AuthError, error_response
from harness.refstack.region.rest import errors as rest_errors
from harness.refstack.region.storage import errors as storage_errors

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_AUTH_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_entity_too_large"}
_KONG_MESSAGES = {
    404: "no Route matched with those values",
    405: "Method Not Allowed",
    413: "Request size limit exceeded",
}


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def render(request: web.Request, status: int, reason: str) -> web.Response:
    """An error aiohttp raised for `request`, as the service of its path answers it."""
    path, method = request.path, request.method
    if _under(path, "/rest/v1"):
        if status == 404:
            return rest_errors.response(rest_errors.ApiError(404, "PGRST125", "Invalid path specified in request URL"))
        if status == 405:
            return rest_errors.response(
                rest_errors.ApiError(405, "PGRST117", f"Unsupported HTTP method: {method[:20]}")
            )
    elif _under(path, "/auth/v1"):
        return error_response(request, AuthError(status, _AUTH_CODES.get(status, "bad_request"), reason))
    elif _under(path, "/storage/v1"):
        if status in (404, 405):  # Storage's router answers a method it lacks as an unknown route too
            error = storage_errors.unknown_route(request)
        elif status == 413:
            error = storage_errors.entity_too_large()
        else:
            error = storage_errors.StorageError(status, "InvalidRequest", reason, http_status=status)
        return storage_errors.render(error)
    elif _under(path, "/functions/v1"):
        return web.json_response({"error": reason}, status=status)
    return web.json_response({"message": _KONG_MESSAGES.get(status, reason)}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type != "text/plain":
            raise
        response = render(request, exc.status, exc.reason)
        if "Allow" in exc.headers:  # a 405 names the methods the route takes
            response.headers["Allow"] = exc.headers["Allow"]
        return response
