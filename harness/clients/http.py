"""One timed HTTP call over Locust's `FastHttpSession` (geventhttpclient), its `Reply`, and error decoding.

FastHttpSession is used with `catch_response=True` and its context is never entered, so it times the call
(body read included) but fires nothing; `Transport.call` then fires one event with our request type, name and
context. That keeps one transport for Locust and for scripts, at the cost of FastHttpSession's own overhead only.

Error bodies of the Supabase services differ (PROTOCOLS.md §2.4, §3.3, §5.2, §6); `error_fields` reads all of
them, so a failure reads `REST insert messages: 409 23505 "duplicate key value violates unique constraint"`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from locust.contrib.fasthttp import FastHttpSession

from harness.clients.events import Reporter, RequestFailed

REGION_HEADER = "x-origin-region"
"""Response header naming the region that served a call (the reference stack and the app's edge set it)."""
MESSAGE_MAX_CHARS = 200
"""Longest server message kept in a failure (Locust groups failures by text, so keep them short and stable)."""

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def redact(text: str) -> str:
    """Drop anything shaped like a JWT, so a server that echoes a token cannot leak it into stats or logs."""
    return _JWT.sub("<jwt>", text)


@dataclass
class Reply:
    """What one call returned. `error` is None on success; `body` is parsed JSON, raw bytes, or None."""

    status: int
    body: Any
    elapsed_ms: float
    origin_region: str = ""
    error: RequestFailed | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    duplicate: bool = False
    """True when an insert was answered 409 23505 and the caller said that means already delivered."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def raise_for_error(self) -> Reply:
        """Raise the `RequestFailed` (for scripts and setup code that cannot go on without this call)."""
        if self.error is not None:
            raise self.error
        return self


def error_fields(body: bytes | None) -> tuple[str, str]:
    """(code, message) from any Supabase error body; the message falls back to the start of the raw text."""
    if not body:
        return "", ""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "", redact(body[:MESSAGE_MAX_CHARS].decode("utf-8", "replace").strip())
    if not isinstance(data, dict):
        return "", redact(str(data)[:MESSAGE_MAX_CHARS])
    code = data.get("error_code") or data.get("code") or ""
    if isinstance(code, int):  # GoTrue's legacy shape puts the HTTP status in `code`
        code = data.get("error_code") or ""
    message = ""
    for key in ("msg", "message", "error_description", "error"):
        value = data.get(key)
        if isinstance(value, str) and value:
            message = value
            break
    if not code and isinstance(data.get("error"), str) and data["error"] != message:
        code = data["error"]
    return str(code), redact(message[:MESSAGE_MAX_CHARS])


class Transport:
    """A FastHttpSession plus the reporter: `call` sends, times, decodes and fires exactly one event."""

    def __init__(
        self,
        base_url: str,
        reporter: Reporter,
        *,
        network_timeout_s: float = 60.0,
        connection_timeout_s: float = 60.0,
        concurrency: int = 10,
        client_pool: Any = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.reporter = reporter
        self.http = FastHttpSession(
            self.base_url,
            request_event=None,
            user=None,
            network_timeout=network_timeout_s,
            connection_timeout=connection_timeout_s,
            concurrency=concurrency,
            client_pool=client_pool,
            max_retries=0,
        )

    def call(
        self,
        request_type: str,
        name: str,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        body: bytes | str | None = None,
        binary: bool = False,
        context: dict[str, Any] | None = None,
        ok_errors: frozenset[tuple[int, str]] = frozenset(),
        fire: bool = True,
    ) -> Reply:
        """Send one request; a 2xx is a success, and so is an error whose (status, code) is in `ok_errors` (the
        reply is then marked `duplicate`). `binary` keeps a successful body as bytes."""
        response = self.http.request(method, path, data=body, headers=headers, catch_response=True)  # type: ignore[arg-type]
        meta = response.request_meta
        elapsed_ms = float(meta.get("response_time", 0.0))
        status = int(response.status_code or 0)
        raw: bytes | None = response.content if status else None
        resp_headers: Any = response.headers or {}
        region = resp_headers.get(REGION_HEADER, "") if status else ""
        error: RequestFailed | None = None
        parsed: Any = None
        duplicate = False
        if status == 0:
            exc = getattr(response, "error", None) or meta.get("exception")
            error = RequestFailed(f"{request_type} {name}", 0, type(exc).__name__, redact(str(exc)))
        elif 200 <= status < 300:
            parsed = raw if binary else _json_or_none(raw)
        else:
            code, message = error_fields(raw)
            parsed = _json_or_none(raw)
            if (status, code) in ok_errors:
                duplicate = True
            else:
                error = RequestFailed(f"{request_type} {name}", status, code, message)
        if fire:
            ctx = {"origin_region": region, **(context or {})}
            if binary and raw and error is None:
                ctx["bytes_received"] = len(raw)
            self.reporter.fire(
                request_type,
                name,
                elapsed_ms,
                response_length=len(raw) if raw else 0,
                exception=error,
                start_time=meta.get("start_time"),
                context=ctx,
            )
        return Reply(status, parsed, elapsed_ms, region, error, resp_headers, duplicate)

    def close(self) -> None:
        self.http.client.close()


def _json_or_none(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw
