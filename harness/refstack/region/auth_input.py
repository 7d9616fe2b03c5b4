"""A GoTrue request body: bounded, parsed as JSON, and refused with GoTrue's 4xx shapes when it cannot be stored.

GoTrue reads a body into a size-limited buffer (413 when over) and answers 400 `bad_json` when it does not parse.
Python's parser accepts two things Go's would turn into something storable but Postgres cannot hold: lone UTF-16
surrogates ("\\ud800", not encodable as UTF-8) and NUL characters (refused in text and jsonb). Both are refused
here, with the same 400 `bad_json`, before they reach bcrypt or the database; so is nesting too deep to parse.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

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


def _unstorable_text(value: Any) -> str | None:
    """Why some string in `value` (keys included) cannot be stored, or None. Iterative: depth is already bounded
    by the parser, but a recursive walk would add its own frames on top."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "strings must not contain NUL (\\u0000)"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "strings must not contain lone UTF-16 surrogates (e.g. \\ud800)"
    return None


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object ({} when empty); AuthError 400 bad_json or 413 otherwise."""
    raw = await read_bounded(request, MAX_BODY_BYTES)
    if raw is None:
        raise _too_large()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _bad_json("the body is not UTF-8") from None
    except RecursionError:
        raise _bad_json("nesting too deep") from None
    except ValueError as exc:
        raise _bad_json(str(exc)) from None
    if not isinstance(body, dict):
        raise AuthError(400, "bad_json", "Request body must be a JSON object")
    problem = _unstorable_text(body)
    if problem is not None:
        raise _bad_json(problem)
    return body
