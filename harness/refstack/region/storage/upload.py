"""`POST|PUT /storage/v1/object/<bucket>/<path>`: upload (or overwrite) one object, as the caller.

    bucket settings (read as storage-api's superuser) ─► body chunks ─► memory once, sha256 as they arrive
    ─► one statement in the caller's transaction: body into harness_internal.object_bodies (content-addressed,
       kept if already there) + the storage.objects row pointing at it ─► {"Id", "Key"}

Row-level security on storage.objects decides: a plain upload needs an INSERT policy; `x-upsert: true` (POST) or
PUT is `insert … on conflict do update`, which also needs the UPDATE (and SELECT) policies, as on Supabase. A
refusal is AccessDenied "new row violates row-level security policy" (statusCode "403"); a duplicate without
upsert is KeyAlreadyExists ("409"). The body is either multipart/form-data (storage3: fields `cacheControl`,
optional `metadata`, then `file` whose part Content-Type is the object's) or the raw bytes (Content-Type as
given, `cache-control` header). It is held once, in one bytearray handed to the driver as is; the size limit is
checked while it streams in, so an oversize body is refused without being read to its end.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import BodyPartReader, web

from harness.model import strict_json
from harness.model.keys import Claims
from harness.refstack.region.state import CONFIG
from harness.refstack.region.storage import errors
from harness.refstack.region.storage.common import (
    bucket_id,
    check_user_metadata,
    claims_of,
    db_of,
    header_value,
    object_key,
    owner_id_of,
    owner_of,
    route,
)

CHUNK_BYTES = 64 * 1024
"""Read size while streaming a body in."""

MAX_FIELD_BYTES = 64 * 1024
"""Largest multipart text field (`cacheControl`, `metadata`) accepted."""

DEFAULT_MULTIPART_TYPE = "text/plain;charset=UTF-8"
"""storage3's default part Content-Type, used when a `file` part carries none."""

_BUCKET = "select file_size_limit, allowed_mime_types from storage.buckets where id = $1"

# The body first (under the body's advisory lock, held shared to commit: see contract_storage.sql), then the row.
_WRITE = """with lock as (
    select pg_advisory_xact_lock_shared(storage.harness_body_lock_class(), hashtext($1))),
  body as (
    insert into harness_internal.object_bodies (sha256, content) select $1, $2 from lock
    on conflict (sha256) do nothing)
  insert into storage.objects (id, bucket_id, name, owner, owner_id, metadata, user_metadata, version)
  values ($3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $1)"""
_UPSERT = (
    _WRITE
    + """
  on conflict (bucket_id, name) do update set
    metadata = excluded.metadata, user_metadata = excluded.user_metadata, version = excluded.version,
    updated_at = now(), last_accessed_at = now()
  returning id"""
)


@dataclass(frozen=True)
class _Bucket:
    file_size_limit: int | None
    allowed_mime_types: tuple[str, ...] | None


class _Sink:
    """The body as it arrives: one growing bytearray and its running sha256."""

    def __init__(self) -> None:
        self.data = bytearray()
        self._hash = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        self.data += chunk
        self._hash.update(chunk)

    @property
    def size_bytes(self) -> int:
        return len(self.data)

    def sha256(self) -> str:
        return self._hash.hexdigest()


@dataclass
class _Body:
    sink: _Sink | None = None
    content_type: str = "application/octet-stream"
    cache_control: str = "no-cache"
    user_metadata: dict[str, Any] | None = None
    fields: dict[str, str] = field(default_factory=dict)


def _cache_control(raw: str) -> str:
    """storage3 sends seconds ("3600"), stored as "max-age=3600"; a full directive is kept as given."""
    raw = raw.strip()
    return f"max-age={raw}" if raw.isdigit() and len(raw) < 12 else header_value(raw, "cacheControl")


EMPTY_FOLDER_PLACEHOLDER = ".emptyFolderPlaceholder"
"""The name the dashboard gives an empty folder's marker object: storage-api skips the type check for it and allows
it no bytes."""


def _check_mime(bucket: _Bucket, content_type: str, key: str) -> str:
    """storage-api's validateMimeType exactly: `type/subtype` as sent (parameters and case included) must equal an
    allowed type, or its type must match an allowed `type/*`; so `text/plain;charset=UTF-8` does not match an
    allowed `text/plain`, as on Supabase."""
    content_type = header_value(content_type, "Content-Type")
    if bucket.allowed_mime_types is None or key.endswith(EMPTY_FOLDER_PLACEHOLDER):
        return content_type
    parts = content_type.split("/")
    if len(parts) >= 2:
        for allowed in bucket.allowed_mime_types:
            allowed_parts = allowed.split("/")
            if len(allowed_parts) >= 2 and allowed_parts[0] == parts[0] and allowed_parts[1] in ("*", parts[1]):
                return content_type
    raise errors.invalid_mime_type(content_type)


async def _stream(chunks: AsyncIterator[bytes], sink: _Sink, limit_bytes: int) -> None:
    async for chunk in chunks:
        sink.write(chunk)
        if sink.size_bytes > limit_bytes:
            raise errors.entity_too_large()


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK_BYTES):
        yield chunk


async def _read_field(part: BodyPartReader) -> str:
    data = bytearray()
    async for chunk in _part_chunks(part):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise errors.invalid_request(f"multipart field {part.name!r} is over {MAX_FIELD_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.invalid_request(f"multipart field {part.name!r} is not UTF-8 text") from None


async def _read_multipart(request: web.Request, bucket: _Bucket, body: _Body, limit_bytes: int, key: str) -> None:
    body.cache_control = "max-age=3600"
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise errors.invalid_request("nested multipart bodies are not supported: send one `file` part")
        if part.name == "file" and body.sink is None:
            body.content_type = _check_mime(bucket, part.headers.get("Content-Type") or DEFAULT_MULTIPART_TYPE, key)
            body.sink = _Sink()
            await _stream(_part_chunks(part), body.sink, limit_bytes)
        elif part.name in ("cacheControl", "metadata"):
            body.fields[part.name] = await _read_field(part)
        # Anything else (a second file, unknown fields) is skipped by reader.next().
    if body.sink is None:
        raise errors.invalid_request("No content provided: send the object in a multipart field named 'file'")


async def _read_body(request: web.Request, bucket: _Bucket, limit_bytes: int, key: str) -> _Body:
    body = _Body()
    try:
        if request.content_type == "multipart/form-data":
            await _read_multipart(request, bucket, body, limit_bytes, key)
        else:
            declared = request.content_length
            if declared is not None and declared > limit_bytes:
                raise errors.entity_too_large()
            body.content_type = _check_mime(bucket, request.headers.get("Content-Type") or body.content_type, key)
            body.cache_control = request.headers.get("cache-control", body.cache_control)
            body.sink = _Sink()
            await _stream(request.content.iter_chunked(CHUNK_BYTES), body.sink, limit_bytes)
        if "cacheControl" in body.fields:
            body.cache_control = body.fields["cacheControl"]
        body.cache_control = _cache_control(body.cache_control)
        if "metadata" in body.fields:
            try:
                meta = strict_json.loads(body.fields["metadata"])
            except strict_json.JsonBodyError as exc:
                raise errors.invalid_request(
                    f'metadata must be a JSON object string, e.g. \'{{"k": "v"}}\' ({exc.message})'
                ) from None
            if not isinstance(meta, dict):
                raise errors.invalid_request("metadata must be a JSON object, not " + type(meta).__name__)
            check_user_metadata(meta)
            body.user_metadata = meta
        return body
    except errors.StorageError:
        raise
    except Exception as exc:
        # Hostile or truncated multipart input makes aiohttp's parser raise assorted exceptions (ValueError,
        # AssertionError, payload errors); whatever the cause, the client sent a body we cannot read.
        raise errors.invalid_request(f"could not read the upload body: {type(exc).__name__}") from None


async def _bucket(request: web.Request, target: str) -> _Bucket:
    """The bucket's limits, read as storage-api reads them: with elevated rights, whoever uploads."""
    row = await db_of(request).admin.fetchrow(_BUCKET, target)
    if row is None:
        raise errors.no_such_bucket()
    mimes = row["allowed_mime_types"]
    return _Bucket(row["file_size_limit"], tuple(mimes) if mimes else None)


def _metadata(body: _Body, sha256: str, size_bytes: int) -> str:
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps(
        {
            "eTag": f'"{sha256}"',
            "size": size_bytes,
            "mimetype": body.content_type,
            "cacheControl": body.cache_control,
            "lastModified": stamp,
            "contentLength": size_bytes,
            "httpStatusCode": 200,
        }
    )


@route
async def upload(request: web.Request) -> web.Response:
    claims = claims_of(request)
    upsert = request.method == "PUT" or request.headers.get("x-upsert") == "true"
    return await store(request, claims, owner_of(claims), owner_id_of(claims), upsert=upsert)


async def store(
    request: web.Request, caller: Claims | None, owner: str | None, owner_id: str | None, *, upsert: bool
) -> web.Response:
    """Store the request's body at its {bucket}/{path}: as `caller` (its policies decide), or with elevated rights
    when None (a signed upload URL, whose token already carries the permission, as storage-api's superuser)."""
    target = bucket_id(request.match_info["bucket"])
    key = object_key(request.match_info["path"])
    bucket = await _bucket(request, target)
    limit_bytes = request.app[CONFIG].storage_file_size_limit_bytes
    if bucket.file_size_limit is not None:
        limit_bytes = min(limit_bytes, bucket.file_size_limit)
    if key.endswith(EMPTY_FOLDER_PLACEHOLDER):
        limit_bytes = 0

    body = await _read_body(request, bucket, limit_bytes, key)
    assert body.sink is not None
    sha256, size_bytes = body.sink.sha256(), body.sink.size_bytes
    new_id = uuid.uuid4()
    args = (
        sha256,
        body.sink.data,
        new_id,
        target,
        key,
        owner,
        owner_id,
        _metadata(body, sha256, size_bytes),
        json.dumps(body.user_metadata) if body.user_metadata is not None else None,
    )
    db = db_of(request)
    try:
        async with db.as_caller(caller) if caller is not None else db.as_admin() as conn:
            if upsert:
                object_id = await conn.fetchval(_UPSERT, *args)
            else:
                await conn.execute(_WRITE, *args)
                object_id = new_id
    except asyncpg.ForeignKeyViolationError:
        raise errors.no_such_bucket() from None  # deleted while the body streamed in
    return web.json_response({"Id": str(object_id), "Key": f"{target}/{key}"})
