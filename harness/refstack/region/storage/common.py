"""What the storage route modules share: the error-catching route wrapper, the caller's claims, JSON bodies,
object keys, bucket and object lookups, and the object JSON the API returns."""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from harness.model import keys
from harness.model.keys import Claims
from harness.refstack.region.db import Database, DbError, Filter
from harness.refstack.region.state import CONFIG, DB, bearer_token
from harness.refstack.region.storage import errors
from harness.refstack.region.storage.access import BucketInfo
from harness.refstack.region.storage.blobs import BLOBS
from harness.refstack.region.storage.errors import StorageError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_KEY_BYTES = 1024
"""Longest object name accepted, in UTF-8 bytes (S3's limit, which Supabase Storage inherits)."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEADER_SAFE = re.compile(r"[\x20-\x7e]{1,255}")


def route(handler: Handler) -> Handler:
    """Wrap a handler so every StorageError (and database error) is rendered in the Storage error shape."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except StorageError as err:
            return errors.render(err)
        except DbError as exc:
            return errors.render(from_db_error(exc))

    return wrapped


def from_db_error(exc: DbError) -> StorageError:
    if exc.code == "25006":
        return errors.database_read_only()
    if exc.code == "23505":
        return errors.key_already_exists()
    if exc.code == "22P02":
        return errors.invalid_request(exc.message)
    return StorageError(500, "DatabaseError", exc.message)


def claims_of(request: web.Request) -> Claims:
    """The verified claims of `Authorization: Bearer <jwt>`; AccessDenied (statusCode 403) when missing or bad."""
    token = bearer_token(request)
    if token is None:
        raise errors.access_denied("Missing JWT: send Authorization: Bearer <anon key, service key or access token>")
    try:
        return keys.verify(token, request.app[CONFIG].jwt_secret, require_exp=False)
    except keys.TokenError as exc:
        raise errors.access_denied(str(exc)) from None


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body ({} when empty); InvalidRequest naming the problem otherwise."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise errors.entity_too_large(request.app[CONFIG].storage_file_size_limit_bytes) from None
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise errors.invalid_request("Body is not valid JSON: send a JSON object") from None
    if not isinstance(body, dict):
        raise errors.invalid_request(f"Body must be a JSON object, not {type(body).__name__}")
    return body


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def object_key(raw: str) -> str:
    """Check an object name: non-empty `a/b/c` segments, no `.`/`..`, no control characters, ≤ 1024 bytes."""
    segments = raw.split("/")
    if (
        not raw
        or not _encodable(raw)
        or len(raw.encode("utf-8")) > MAX_KEY_BYTES
        or _CONTROL.search(raw)
        or any(s in ("", ".", "..") for s in segments)
    ):
        raise errors.invalid_key(raw[:200].encode("utf-8", "replace").decode("utf-8"))
    return raw


def header_value(raw: str, what: str) -> str:
    """A value stored to be sent back as a response header (content type, cache control): printable ASCII."""
    if not _HEADER_SAFE.fullmatch(raw):
        raise errors.invalid_request(f"{what} must be 1-255 printable ASCII characters, got {raw[:80]!r}")
    return raw


def get_bucket(db: Database, bucket_id: str) -> BucketInfo:
    if not _encodable(bucket_id) or not bucket_id:
        raise errors.no_such_bucket()
    row = db.get("storage_buckets", id=bucket_id)
    if row is None:
        raise errors.no_such_bucket()
    return BucketInfo.from_row(row)


def get_object(db: Database, bucket_id: str, name: str) -> dict[str, Any] | None:
    rows, _ = db.select(
        "storage_objects", filters=[Filter("bucket_id", "eq", bucket_id), Filter("name", "eq", name)], limit=1
    )
    return rows[0] if rows else None


def owner_of(claims: Claims) -> str | None:
    """The owner recorded for an upload: the JWT `sub` when it is a UUID (the column's type), else none."""
    if claims.sub is None:
        return None
    try:
        return str(uuid.UUID(claims.sub))
    except ValueError:
        return None


def object_json(row: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """An object as list and delete return it; `name` overrides the full name (list shows the last segment)."""
    metadata = dict(row.get("metadata") or {})
    metadata.pop("user_metadata", None)
    return {
        "name": name if name is not None else row["name"],
        "bucket_id": row["bucket_id"],
        "owner": row.get("owner") or "",
        "owner_id": row.get("owner") or "",
        "id": row["id"],
        "updated_at": row["updated_at"],
        "created_at": row["created_at"],
        "last_accessed_at": row["last_accessed_at"],
        "metadata": metadata,
    }


def db_of(request: web.Request) -> Database:
    return request.app[DB]


def release_blobs(app: web.Application, sha256s: set[str]) -> None:
    """Remove the blobs of deleted or overwritten objects that no row refers to any more (single-threaded loop:
    no upload can commit a row for the same hash between this check and the unlink)."""
    db = app[DB]
    for sha256 in sha256s:
        rows, _ = db.select(
            "storage_objects", columns=["id"], filters=[Filter("content_sha256", "eq", sha256)], limit=1
        )
        if not rows:
            app[BLOBS].remove(sha256)
