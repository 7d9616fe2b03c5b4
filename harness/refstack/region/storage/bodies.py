"""Sending an object's body: the bytes read from harness_internal.object_bodies, with the headers recorded at
upload (content type, cache control, ETag), `?download=` as Content-Disposition, and single byte ranges.

The body arrives from the driver as one `bytes` and is handed to aiohttp as is (no copy); aiohttp answers HEAD
without it.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from harness.refstack.region.storage import errors


def _content_disposition(request: web.Request, key: str) -> str | None:
    if "download" not in request.query:
        return None
    name = request.query["download"] or key.rsplit("/", 1)[-1]
    quoted = urllib.parse.quote(name, safe="")
    return f"attachment; filename={quoted}; filename*=UTF-8''{quoted}"


def serve_body(request: web.Request, row: Mapping[str, Any]) -> web.Response:
    """`row` has name, mimetype, cache_control, etag, updated_at and content (bytes)."""
    content: bytes = row["content"]
    headers = {
        "Content-Type": str(row["mimetype"] or "application/octet-stream"),
        "Cache-Control": str(row["cache_control"] or "no-cache"),
        "Accept-Ranges": "bytes",
    }
    if row["etag"]:
        headers["ETag"] = str(row["etag"])
    if row["updated_at"] is not None:
        headers["Last-Modified"] = row["updated_at"].strftime("%a, %d %b %Y %H:%M:%S GMT")
    if disposition := _content_disposition(request, str(row["name"])):
        headers["Content-Disposition"] = disposition
    if "Range" not in request.headers:
        return web.Response(body=content, headers=headers)
    try:
        wanted = request.http_range
    except ValueError:
        wanted = slice(None)  # a malformed Range header is ignored, as RFC 9110 allows
    start, stop, _ = wanted.indices(len(content))
    if wanted.start is None and wanted.stop is None:
        return web.Response(body=content, headers=headers)
    if start >= stop:
        raise errors.StorageError(
            416, "InvalidRange", f"The range is not satisfiable for an object of {len(content)} bytes"
        )
    headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(content)}"
    return web.Response(body=memoryview(content)[start:stop], status=206, headers=headers)
