"""One timed HTTP call over the keep-alive pool of Locust's `FastHttpSession` (geventhttpclient), its `Reply`, and
error decoding.

The session supplies the connection pool and its settings (timeouts, concurrency, a shared `client_pool`); a call
goes straight to the pool's `HTTPClient` for the target host, as FastHttpSession itself ends up doing, without the
layers around it that a harness call does not use (cookies, redirects, retries, the per-request URL parse, Locust's
own request event and response wrapper: a worker's CPU per request under `harness load` fell from 0.58 to 0.46 ms
without them, docs/BENCHMARKS.md). What those layers added on the wire is kept: FastHttpSession's default
`Accept-Encoding` and the percent-encoding of the request URI.
`Transport.call` times the call itself, body read included, reads and decodes the body (`decode_body`), then fires
one event with our request type, name and context. Reading the body ourselves means an empty body is never
"decompressed" (a 304 that names `Content-Encoding: br` has none) and a body that cannot be read or decoded is a
failure value, never an exception.

The time of a call is split into legs (docs/result-schema.md, "Request legs"), from three clock reads the call
makes anyway or adds (one `perf_counter` when the headers are in) and the pool's connect timing (pool.py):

    started ── connect (new connection only: DNS + TCP + TLS) ── wait (send, server, first byte) ── headers in
            ── body (read the rest) ── elapsed                      total = connect + wait + body

A reused keep-alive connection has connect None (0 ms). The legs travel in the event's context (`connect_ms`,
`wait_ms`, `body_ms`) and on the `Reply`, for callers that fire their own event (`Reply.leg_context`).

Error bodies of the Supabase services differ (docs/protocols.md §2.4, §3.3, §5.2, §6); `error_fields` reads all of
them, so a failure reads `REST insert messages: 409 23505 "duplicate key value violates unique constraint"`.
"""

from __future__ import annotations

import json
import re
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import brotli
from geventhttpclient.url import URL, requote_uri
from locust.contrib.fasthttp import FAILURE_EXCEPTIONS, FastHttpSession

from harness.clients import pool
from harness.clients.events import Reporter, RequestFailed
from harness.model.metrics import REGION_HEADER

pool.install()  # keep-alive reuse past fd 1023 (see pool.py)

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
    raw_body: Any
    """What came: parsed JSON, raw bytes, or None; with `json_pending`, bytes still to parse (see `body`)."""
    elapsed_ms: float
    origin_region: str = ""
    error: RequestFailed | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    duplicate: bool = False
    """True when an insert was answered 409 23505 and the caller said that means already delivered."""
    json_pending: bool = False
    connect_ms: float | None = None
    """Time to open the connection (DNS + TCP + TLS); None when a keep-alive connection was reused or no
    response came."""
    wait_ms: float | None = None
    """From the request's start (after any connect) to its response headers: send, server time, first byte."""
    body_ms: float | None = None
    """From the headers to the end of the body."""
    wire_bytes: int = 0
    """Body bytes as they came over the wire (before Content-Encoding was undone)."""

    def leg_context(self) -> dict[str, Any]:
        """The legs as an event context's keys (empty when no response came), for callers firing their own event."""
        if self.wait_ms is None:
            return {}
        return {
            "connect_ms": self.connect_ms,
            "wait_ms": self.wait_ms,
            "body_ms": self.body_ms,
            "wire_bytes": self.wire_bytes,
        }

    @property
    def body(self) -> Any:
        """The body, JSON parsed on first use: a load loop that only checks `ok` never pays for parsing (a 50-row
        history read spent 30 % of the generator's CPU in json.loads)."""
        if self.json_pending:
            self.raw_body = _json_or_none(self.raw_body)
            self.json_pending = False
        return self.raw_body

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


DEFAULT_ACCEPT_ENCODING = "gzip, deflate, br"
"""Sent when a call names no Accept-Encoding, as FastHttpSession (and every browser) does."""


def decode_body(raw: bytes, content_encoding: str) -> bytes:
    """The body before its `Content-Encoding` (codings undone last first). An empty body is empty in any encoding:
    a 304, a 204 or a HEAD reply may name the encoding the full body would have had. Raises on a body that is
    not what its encoding says, or on an encoding this client does not know."""
    if not raw:
        return raw
    for coding in reversed([c.strip().lower() for c in content_encoding.split(",") if c.strip()]):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            raw = zlib.decompress(raw, 16 + zlib.MAX_WBITS)
        elif coding == "deflate":  # zlib-wrapped as the RFC says; some servers send raw deflate
            try:
                raw = zlib.decompress(raw)
            except zlib.error:
                raw = zlib.decompress(raw, -zlib.MAX_WBITS)
        elif coding == "br":
            raw = brotli.decompress(raw)
        else:
            raise ValueError(f"Content-Encoding {coding!r} is not supported (identity, gzip, deflate or br)")
    return raw


class Transport:
    """A FastHttpSession plus the reporter: `call` sends, times, decodes and fires exactly one event."""

    def __init__(
        self,
        base_url: str,
        reporter: Reporter,
        *,
        headers: Mapping[str, str] | None = None,
        network_timeout_s: float = 60.0,
        connection_timeout_s: float = 60.0,
        concurrency: int = 10,
        client_pool: Any = None,
        region_header: str = REGION_HEADER,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.reporter = reporter
        self.headers = dict(headers or {})
        """Sent on every request (a call's own headers win), e.g. `CloudFront-Viewer-Country` on the local stack."""
        self.region_header = region_header
        """Response header naming the region that served a call (HARNESS_REGION_HEADER: the target's
        `names.region_header`); its value is `Reply.origin_region` and every event's `context.origin_region`."""
        self.http = FastHttpSession(
            self.base_url,
            request_event=None,
            user=None,
            network_timeout=network_timeout_s,
            connection_timeout=connection_timeout_s,
            concurrency=concurrency,
            client_pool=client_pool,
        )
        # Calls go to the pool's HTTPClient, which checks no status and follows no redirect: every status is a
        # response whose body we read, and a redirect's Location (a host nobody allowed, docs/safety.md) is not fetched.
        self._base = URL(self.base_url)
        self._base_path = self._base.path.rstrip("/")
        self._client: Any = None
        """The pool's HTTPClient for the base URL, looked up at the first call."""

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
        decode: bool = True,
        context: dict[str, Any] | None = None,
        ok_errors: frozenset[tuple[int, str]] = frozenset(),
        fire: bool = True,
    ) -> Reply:
        """Send one request; a 2xx is a success, and so is an error whose (status, code) is in `ok_errors` (the
        reply is then marked `duplicate`). `binary` keeps a successful body as bytes; `decode=False` keeps it as it
        came on the wire (still compressed: for a body nobody reads, as k6's discardResponseBodies; an error body
        is decoded all the same). Never raises for anything the server or the network does: a body that cannot be
        read or decoded is a failure with status and reason."""
        label = f"{request_type} {name}"
        start_time, started = time.time(), time.perf_counter()
        response, status, error = self._send(label, method, path, {**self.headers, **headers}, body)
        resp_headers: Any = {}
        raw: bytes | None = None
        connect_ms: float | None = None
        first_byte_ms = -1.0
        wire = 0
        if response is not None:
            first_byte_ms = (time.perf_counter() - started) * 1000
            connect_ms = pool.take_connect_ms(response)
            resp_headers = response.info()
            raw, error, wire = _read_body(response, resp_headers, label, status, decode or not 200 <= status < 300)
        elapsed_ms = (time.perf_counter() - started) * 1000
        region = str(resp_headers.get(self.region_header, "") or "") if status else ""
        parsed: Any = None
        duplicate = False
        if error is not None:
            pass
        elif 200 <= status < 300:
            parsed = raw
        else:
            code, message = error_fields(raw)
            parsed = raw
            if (status, code) in ok_errors:
                duplicate = True
            else:
                error = RequestFailed(label, status, code, message)
        wait_ms = body_ms = None
        if first_byte_ms >= 0:
            wait_ms = first_byte_ms - (connect_ms or 0.0)
            body_ms = elapsed_ms - first_byte_ms
        if fire:
            ctx = {"origin_region": region, **(context or {})}
            if binary and raw and error is None:
                ctx["bytes_received"] = len(raw)
            if wait_ms is not None:
                ctx["connect_ms"] = connect_ms
                ctx["wait_ms"] = wait_ms
                ctx["body_ms"] = body_ms
                ctx["wire_bytes"] = wire
            self.reporter.fire(
                request_type,
                name,
                elapsed_ms,
                response_length=len(raw) if raw else 0,
                exception=error,
                start_time=start_time,
                context=ctx,
            )
        pending = parsed is not None and not (binary and error is None and 200 <= status < 300)
        return Reply(
            *(status, parsed, elapsed_ms, region, error, resp_headers, duplicate, pending),
            *(connect_ms, wait_ms, body_ms, wire),
        )

    def _send(
        self, label: str, method: str, path: str, headers: dict[str, str], body: bytes | str | None
    ) -> tuple[Any, int, RequestFailed | None]:
        """(response whose body is still to read, status, None), or (None, 0, failure) when no response came."""
        if "Accept-Encoding" not in headers and "accept-encoding" not in headers:
            headers["Accept-Encoding"] = DEFAULT_ACCEPT_ENCODING
        try:
            if "://" in path:  # an absolute URL (a signed URL may be one): that host's pooled client
                url = URL(path)
                client, uri = self.http.client.clientpool.get_client(url), url.quoted_uri
            else:
                client = self._client
                if client is None:
                    client = self._client = self.http.client.clientpool.get_client(self._base)
                uri = requote_uri(self._base_path + path)
            response = client.request(method, uri, body=body, headers=headers)
        except FAILURE_EXCEPTIONS as exc:  # no response: refused, reset, timed out, unparsable
            return None, 0, RequestFailed(label, 0, type(exc).__name__, redact(str(exc)))
        except Exception as exc:  # anything else (a header value the client refuses, say) is a value too
            return None, 0, RequestFailed(label, 0, type(exc).__name__, _short(exc))
        return response, int(response.status_code), None

    def close(self) -> None:
        self.http.client.close()


def _read_body(
    response: Any, headers: Any, label: str, status: int, decode: bool = True
) -> tuple[bytes | None, RequestFailed | None, int]:
    """Read the whole body and undo its Content-Encoding (unless `decode` is off); a failure (with the status that
    came) if either breaks. The last item is the body's length on the wire.
    The connection goes back to the pool only when the body was read to its end (geventhttpclient checks)."""
    encoding = str(headers.get("Content-Encoding", "") or "")
    try:
        raw = response.read()
    except Exception as exc:  # a reset or a timeout mid-body, a malformed chunk: the reply is unusable
        return None, RequestFailed(label, status, "body_read_error", f"reading the body: {_short(exc)}"), 0
    finally:
        response.release()
    if not decode:
        return raw, None, len(raw)
    try:
        return decode_body(raw, encoding), None, len(raw)
    except Exception as exc:  # zlib.error, brotli.error, an unknown coding: say which and how big
        message = f"cannot decode a {len(raw)}-byte body with Content-Encoding {encoding!r}: {_short(exc)}"
        return None, RequestFailed(label, status, "body_decode_error", message), len(raw)


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return redact(text[:MESSAGE_MAX_CHARS])


def _json_or_none(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw
