"""`POST|PUT /storage/v1/object/<bucket>/<path>`: upload (or overwrite) one object, streamed to disk.

    request ─► access check + size/mime limits known up front ─► body chunks ─► BlobWriter (temp file + sha256)
            ─► commit blob ─► insert/update the storage_objects row (replicated) ─► {"Id", "Key"}

The body is either multipart/form-data (storage3: fields `cacheControl`, optional `metadata`, then `file` whose
part Content-Type is the object's) or the raw bytes (Content-Type as given, `cache-control` header). It is never
held in memory: chunks go straight to a temp file, so a 10 MB upload costs one 64 KiB buffer. `x-upsert: true`
(POST) or PUT overwrite an existing object; otherwise a duplicate is KeyAlreadyExists (statusCode "409").
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from harness.model.keys import Claims
from harness.refstack.region.db import Filter, now_iso
from harness.refstack.region.state import CONFIG, MEMBERSHIP
from harness.refstack.region.storage import errors
from harness.refstack.region.storage.access import BucketInfo, can_access
from harness.refstack.region.storage.blobs import BLOBS, BlobWriter
from harness.refstack.region.storage.common import (
    claims_of,
    db_of,
    get_bucket,
    get_object,
    header_value,
    object_key,
    owner_of,
    release_blobs,
    route,
)

CHUNK_BYTES = 64 * 1024
"""Read size while streaming a body to disk."""

MAX_FIELD_BYTES = 64 * 1024
"""Largest multipart text field (`cacheControl`, `metadata`) accepted."""

DEFAULT_MULTIPART_TYPE = "text/plain;charset=UTF-8"
"""storage3's default part Content-Type, used when a `file` part carries none."""


@dataclass
class _Body:
    writer: BlobWriter | None = None
    content_type: str = "application/octet-stream"
    cache_control: str = "no-cache"
    user_metadata: dict[str, Any] | None = None
    fields: dict[str, str] = field(default_factory=dict)


def _cache_control(raw: str) -> str:
    """storage3 sends seconds ("3600"), stored as "max-age=3600"; a full directive is kept as given."""
    raw = raw.strip()
    return f"max-age={raw}" if raw.isdigit() and len(raw) < 12 else header_value(raw, "cacheControl")


def _check_mime(bucket: BucketInfo, content_type: str) -> str:
    content_type = header_value(content_type, "Content-Type")
    if bucket.allowed_mime_types is None:
        return content_type
    base = content_type.split(";", 1)[0].strip().lower()
    for allowed in bucket.allowed_mime_types:
        allowed = allowed.strip().lower()
        if base == allowed or (allowed.endswith("/*") and base.startswith(allowed[:-1])):
            return content_type
    raise errors.invalid_mime_type(base)


async def _stream(chunks: AsyncIterator[bytes], writer: BlobWriter, limit_bytes: int) -> None:
    async for chunk in chunks:
        writer.write(chunk)
        if writer.size_bytes > limit_bytes:
            raise errors.entity_too_large(limit_bytes)


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


async def _read_multipart(request: web.Request, bucket: BucketInfo, body: _Body, limit_bytes: int) -> None:
    body.cache_control = "max-age=3600"
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise errors.invalid_request("nested multipart bodies are not supported: send one `file` part")
        if part.name == "file" and body.writer is None:
            body.content_type = _check_mime(bucket, part.headers.get("Content-Type") or DEFAULT_MULTIPART_TYPE)
            body.writer = request.app[BLOBS].writer()
            await _stream(_part_chunks(part), body.writer, limit_bytes)
        elif part.name in ("cacheControl", "metadata"):
            body.fields[part.name] = await _read_field(part)
        # Anything else (a second file, unknown fields) is skipped by reader.next().
    if body.writer is None:
        raise errors.invalid_request("No content provided: send the object in a multipart field named 'file'")


async def _read_body(request: web.Request, bucket: BucketInfo, limit_bytes: int) -> _Body:
    body = _Body()
    try:
        if request.content_type == "multipart/form-data":
            await _read_multipart(request, bucket, body, limit_bytes)
        else:
            declared = request.content_length
            if declared is not None and declared > limit_bytes:
                raise errors.entity_too_large(limit_bytes)
            body.content_type = _check_mime(bucket, request.headers.get("Content-Type") or body.content_type)
            body.cache_control = request.headers.get("cache-control", body.cache_control)
            body.writer = request.app[BLOBS].writer()
            await _stream(request.content.iter_chunked(CHUNK_BYTES), body.writer, limit_bytes)
        if "cacheControl" in body.fields:
            body.cache_control = body.fields["cacheControl"]
        body.cache_control = _cache_control(body.cache_control)
        if "metadata" in body.fields:
            try:
                meta = json.loads(body.fields["metadata"])
            except ValueError:
                raise errors.invalid_request('metadata must be a JSON object string, e.g. \'{"k": "v"}\'') from None
            if not isinstance(meta, dict):
                raise errors.invalid_request("metadata must be a JSON object, not " + type(meta).__name__)
            body.user_metadata = meta
        return body
    except errors.StorageError:
        if body.writer is not None:
            body.writer.discard()
        raise
    except Exception as exc:
        # Hostile or truncated multipart input makes aiohttp's parser raise assorted exceptions (ValueError,
        # AssertionError, payload errors); whatever the cause, the client sent a body we cannot read.
        if body.writer is not None:
            body.writer.discard()
        raise errors.invalid_request(f"could not read the upload body: {type(exc).__name__}") from None


def _check_write(claims: Claims, request: web.Request, bucket: BucketInfo, key: str, existing: Any) -> None:
    membership = request.app[MEMBERSHIP]
    if existing is None:
        allowed = can_access(claims, bucket, key, "upload", membership, owner_of(claims))
    else:
        allowed = can_access(claims, bucket, key, "update", membership, existing.get("owner"))
    if not allowed:
        raise errors.rls_violation()


@route
async def upload(request: web.Request) -> web.Response:
    claims = claims_of(request)
    db = db_of(request)
    bucket = get_bucket(db, request.match_info["bucket"])
    key = object_key(request.match_info["path"])
    if db.read_only:
        raise errors.database_read_only()
    upsert = request.method == "PUT" or request.headers.get("x-upsert") == "true"
    existing = get_object(db, bucket.id, key)
    if existing is not None and not upsert:
        raise errors.key_already_exists()
    _check_write(claims, request, bucket, key, existing)
    limit_bytes = request.app[CONFIG].storage_file_size_limit_bytes
    if bucket.file_size_limit is not None:
        limit_bytes = min(limit_bytes, bucket.file_size_limit)

    body = await _read_body(request, bucket, limit_bytes)
    assert body.writer is not None
    size_bytes = body.writer.size_bytes
    sha256 = body.writer.commit()

    # From here to the response nothing awaits, so the existence check and the write cannot interleave with
    # another upload of the same key; the check is repeated because one may have finished while we streamed.
    try:
        object_id = _write_row(request, claims, bucket, key, upsert, sha256, size_bytes, body)
    except BaseException:
        release_blobs(request.app, {sha256})  # only removes it if no row refers to it
        raise
    return web.json_response({"Id": object_id, "Key": f"{bucket.id}/{key}"})


def _write_row(
    request: web.Request,
    claims: Claims,
    bucket: BucketInfo,
    key: str,
    upsert: bool,
    sha256: str,
    size_bytes: int,
    body: _Body,
) -> str:
    db = db_of(request)
    existing = get_object(db, bucket.id, key)
    if existing is not None and not upsert:
        raise errors.key_already_exists()
    _check_write(claims, request, bucket, key, existing)
    stamp = now_iso()
    metadata: dict[str, Any] = {
        "eTag": f'"{sha256}"',
        "size": size_bytes,
        "mimetype": body.content_type,
        "cacheControl": body.cache_control,
        "lastModified": stamp,
        "contentLength": size_bytes,
        "httpStatusCode": 200,
    }
    if body.user_metadata is not None:
        metadata["user_metadata"] = body.user_metadata
    values = {"metadata": metadata, "content_sha256": sha256, "updated_at": stamp, "last_accessed_at": stamp}
    if existing is None:
        row = {"bucket_id": bucket.id, "name": key, "owner": owner_of(claims), "created_at": stamp, **values}
        return str(db.insert("storage_objects", [row])[0]["id"])
    db.update("storage_objects", values, filters=[Filter("id", "eq", existing["id"])])
    if existing.get("content_sha256") and existing["content_sha256"] != sha256:
        release_blobs(request.app, {str(existing["content_sha256"])})
    return str(existing["id"])
