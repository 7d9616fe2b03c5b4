"""What the storage route modules share: the error-catching route wrapper, the caller's claims, checked input
(JSON bodies, object keys, bucket ids, header values, user metadata) and the SQL fragments several routes use."""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web

from harness.model import keys, strict_json
from harness.model.keys import Claims
from harness.refstack.region.database import API_ROLES, Database
from harness.refstack.region.state import CONFIG, DB, bearer_token
from harness.refstack.region.storage import errors
from harness.refstack.region.storage.errors import StorageError
from harness.refstack.region.token_cache import verify_token

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_KEY_BYTES = 1024
"""Longest object name accepted, in UTF-8 bytes (S3's limit, which Supabase Storage inherits)."""
MAX_METADATA_DEPTH = 32
"""Deepest nesting accepted in user metadata (deeper JSON is refused rather than risking the parser's stack)."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEADER_SAFE = re.compile(r"[\x20-\x7e]{1,255}")

OBJECT_JSON = """json_build_object(
    'name', o.name, 'bucket_id', o.bucket_id, 'owner', coalesce(o.owner::text, ''),
    'owner_id', coalesce(o.owner_id, ''), 'id', o.id, 'updated_at', o.updated_at, 'created_at', o.created_at,
    'last_accessed_at', o.last_accessed_at, 'metadata', o.metadata)"""
"""An object as list and delete return it (storage-api's columns), built by Postgres from `o`."""

BUCKET_EXISTS = "exists (select 1 from storage.harness_bucket($1))"
"""Whether bucket $1 exists, whoever asks (storage-api looks buckets up as its superuser)."""


def route(handler: Handler) -> Handler:
    """Wrap a handler so every StorageError (and database error) is rendered in the Storage error shape."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except StorageError as err:
            return errors.render(err)
        except asyncpg.PostgresError as exc:
            return errors.render(errors.from_postgres(exc))
        except asyncpg.DataError as exc:  # a value asyncpg could not encode for Postgres
            return errors.render(errors.invalid_request(str(exc)))

    return wrapped


def claims_of(request: web.Request) -> Claims:
    """The verified claims of `Authorization: Bearer <jwt>`; AccessDenied (statusCode 403) when missing or bad.

    The role must be one the API may become (anon, authenticated, service_role); supabase_admin tokens act as
    the service role, as they bypass row-level security either way."""
    token = bearer_token(request)
    if token is None:
        raise errors.access_denied("Missing JWT: send Authorization: Bearer <anon key, service key or access token>")
    try:
        claims = verify_token(token, request.app[CONFIG].jwt_secret, require_exp=False)
    except keys.TokenError as exc:
        raise errors.access_denied(str(exc)) from None
    if claims.role in API_ROLES:
        return claims
    if claims.is_service:
        return dataclasses.replace(claims, role="service_role", raw={**claims.raw, "role": "service_role"})
    raise errors.access_denied(f"role {claims.role[:60]!r} is not anon, authenticated or service_role")


def db_of(request: web.Request) -> Database:
    return request.app[DB]


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body ({} when empty); InvalidRequest naming the problem otherwise."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise errors.entity_too_large() from None
    if not raw.strip():
        return {}
    try:
        body = strict_json.loads(raw)
    except strict_json.JsonBodyError as exc:
        raise errors.invalid_request(f"Body is not valid JSON ({exc.message}): send a JSON object") from None
    if not isinstance(body, dict):
        raise errors.invalid_request(f"Body must be a JSON object, not {type(body).__name__}")
    return body


def storable_text(text: str) -> bool:
    """Whether Postgres can store `text`: valid UTF-8 (no lone surrogates) and no NUL character."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def object_key(raw: str) -> str:
    """Check an object name: non-empty `a/b/c` segments, no `.`/`..`, no control characters, ≤ 1024 bytes."""
    segments = raw.split("/")
    if (
        not raw
        or not storable_text(raw)
        or len(raw.encode("utf-8")) > MAX_KEY_BYTES
        or _CONTROL.search(raw)
        or any(s in ("", ".", "..") for s in segments)
    ):
        raise errors.invalid_key(raw[:200].encode("utf-8", "replace").decode("utf-8"))
    return raw


def bucket_id(raw: str) -> str:
    """A bucket id from a path or body: one that cannot exist (empty, unstorable) is simply not found."""
    if not raw or not storable_text(raw) or len(raw) > 100:
        raise errors.no_such_bucket()
    return raw


def header_value(raw: str, what: str) -> str:
    """A value stored to be sent back as a response header (content type, cache control): printable ASCII."""
    if not _HEADER_SAFE.fullmatch(raw):
        raise errors.invalid_request(f"{what} must be 1-255 printable ASCII characters, got {raw[:80]!r}")
    return raw


def check_user_metadata(value: Any, depth: int = 0) -> None:
    """User metadata Postgres's jsonb accepts: no NUL or lone surrogates, finite numbers, bounded depth."""
    if depth > MAX_METADATA_DEPTH:
        raise errors.invalid_request(f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, str):
        if not storable_text(value):
            raise errors.invalid_request("metadata strings must be UTF-8 text without NUL characters")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise errors.invalid_request("metadata numbers must be finite (no NaN or Infinity)")
    elif isinstance(value, list):
        for item in value:
            check_user_metadata(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_user_metadata(key, depth + 1)
            check_user_metadata(item, depth + 1)


def owner_of(claims: Claims) -> str | None:
    """The owner recorded for an upload: the JWT `sub` when it is a UUID (the column's type), else none."""
    return owner_uuid(claims.sub)


def owner_uuid(sub: str | None) -> str | None:
    if sub is None:
        return None
    try:
        return str(uuid.UUID(sub))
    except ValueError:
        return None


def owner_id_of(claims: Claims) -> str | None:
    """`owner_id` (text): the JWT `sub` as given, when Postgres can store it."""
    return claims.sub if claims.sub is not None and storable_text(claims.sub) else None
