"""API errors as values carrying their HTTP status, and the one place that renders them (Toxiproxy's `api.go`).

Handlers raise these; the API middleware turns every one into a response with `error_response`, which writes
what Go's `http.Error` writes: `{"error":"…","status":N}` plus a newline, as `text/plain; charset=utf-8`.
"""

from __future__ import annotations

from aiohttp import web

from harness.network.toxiproxy.wire import encode_json


class ApiError(Exception):
    """An API failure: the message the client sees and the HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def joined(self, detail: object) -> ApiError:
        """This error with a detail appended (Toxiproxy's `joinError`): "bad request body: <detail>"."""
        return ApiError(f"{self.message}: {detail}", self.status)

    def body(self) -> dict[str, object]:
        return {"error": self.message, "status": self.status}


ERR_BAD_REQUEST_BODY = ApiError("bad request body", 400)
ERR_MISSING_FIELD = ApiError("missing required field", 400)
ERR_PROXY_NOT_FOUND = ApiError("proxy not found", 404)
ERR_PROXY_ALREADY_EXISTS = ApiError("proxy already exists", 409)
ERR_INVALID_STREAM = ApiError("stream was invalid, can be either upstream or downstream", 400)
ERR_INVALID_TOXIC_TYPE = ApiError("invalid toxic type", 400)
ERR_TOXIC_ALREADY_EXISTS = ApiError("toxic already exists", 409)
ERR_TOXIC_NOT_FOUND = ApiError("toxic not found", 404)


def listen_failed(message: str) -> ApiError:
    """A proxy could not listen: 500 (not a client error in Toxiproxy), worded like Go's net.Listen error."""
    return ApiError(message, 500)


def error_response(err: ApiError) -> web.Response:
    """The one renderer of API errors."""
    return plain_text_response(encode_json(err.body()), err.status)


def plain_text_response(text: str, status: int) -> web.Response:
    """What Go's `http.Error` sends: the text plus a newline, as text/plain."""
    return web.Response(
        body=(text + "\n").encode(),
        status=status,
        headers={"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"},
    )
