"""A GoTrue request body: bounded, parsed as JSON, and refused with GoTrue's 4xx shapes when it cannot be stored.

GoTrue reads a body into a size-limited buffer (413 when over) and answers 400 `bad_json` when it does not parse.
The shared strict reader (harness/model/strict_json.py) refuses what Go's encoding/json refuses (NaN, Infinity,
floats beyond a double, invalid UTF-8) and what Postgres could not store though Go would parse it: lone UTF-16
surrogates ("\\ud800") and NUL characters (refused in text and jsonb); all with the same 400 `bad_json`, before
they reach bcrypt or the database. So is nesting too deep.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from harness.model import strict_json
from harness.refstack.region.auth_errors import AuthError

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body the auth routes read (sign-up metadata included); larger answers 413."""
_CHUNK = 64 * 1024


async def read_bounded(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None as soon as it proves longer than `limit` (declared or streamed), unread beyond."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> AuthError:
    return AuthError(413, "request_entity_too_large", f"Request body too large (max {MAX_BODY_BYTES} bytes)")


def _bad_json(reason: str) -> AuthError:
    return AuthError(400, "bad_json", f"Could not parse request body as JSON: {reason}")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object ({} when empty); AuthError 400 bad_json or 413 otherwise."""
    raw = await read_bounded(request, MAX_BODY_BYTES)
    if raw is None:
        raise _too_large()
    if not raw.strip():
        return {}
    try:
        body = strict_json.loads(raw, allow_nul=False)
    except strict_json.JsonBodyError as exc:
        raise _bad_json(exc.message) from None
    if not isinstance(body, dict):
        raise AuthError(400, "bad_json", "Request body must be a JSON object")
    return body
