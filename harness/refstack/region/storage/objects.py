"""`/storage/v1/object…` reads and deletes: download (authenticated and public), info, list, delete, move, copy.

A read the access rules refuse answers NoSuchKey, as the real service does (its row-level security hides the
row rather than refusing it). Downloads are `FileResponse`s straight from the blob file: sendfile, Range and
HEAD come for free and the body is never read into memory. Reads do not bump `last_accessed_at`: that would be a
replicated write per download.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from aiohttp import web

from harness.refstack.region.db import Filter, Predicate
from harness.refstack.region.state import MEMBERSHIP
from harness.refstack.region.storage import errors
from harness.refstack.region.storage.access import BucketInfo, can_access
from harness.refstack.region.storage.blobs import blob_path
from harness.refstack.region.storage.common import (
    claims_of,
    db_of,
    get_bucket,
    get_object,
    object_json,
    object_key,
    owner_of,
    read_json,
    release_blobs,
    route,
)

FILE_CHUNK_BYTES = 256 * 1024
"""Chunk size when a download cannot use sendfile."""

MAX_LIST_LIMIT = 10_000
MAX_DELETE_PREFIXES = 1000
"""Most objects one `DELETE /object/<bucket>` may name (Supabase's default limit)."""

SORT_COLUMNS = ("name", "updated_at", "created_at", "last_accessed_at")


def _content_disposition(request: web.Request, key: str) -> str | None:
    if "download" not in request.query:
        return None
    name = request.query["download"] or key.rsplit("/", 1)[-1]
    quoted = urllib.parse.quote(name, safe="")
    return f"attachment; filename={quoted}; filename*=UTF-8''{quoted}"


async def serve_object(request: web.Request, row: dict[str, Any]) -> web.StreamResponse:
    """Stream one object's bytes with the content type and cache control recorded at upload."""
    sha256 = row.get("content_sha256")
    path = await blob_path(request.app, str(sha256)) if sha256 else None
    if path is None:
        # The row replicated before its blob and no fetcher could get it: nothing to serve yet.
        raise errors.no_such_key()
    metadata = row.get("metadata") or {}
    headers = {
        "Content-Type": str(metadata.get("mimetype") or "application/octet-stream"),
        "Cache-Control": str(metadata.get("cacheControl") or "no-cache"),
    }
    if disposition := _content_disposition(request, str(row["name"])):
        headers["Content-Disposition"] = disposition
    return web.FileResponse(path, chunk_size=FILE_CHUNK_BYTES, headers=headers)


def _readable_object(request: web.Request, bucket: BucketInfo, key: str) -> dict[str, Any]:
    claims = claims_of(request)
    row = get_object(db_of(request), bucket.id, key)
    if row is None or not can_access(claims, bucket, key, "read", request.app[MEMBERSHIP], row.get("owner")):
        raise errors.no_such_key()
    return row


@route
async def download(request: web.Request) -> web.StreamResponse:
    bucket = get_bucket(db_of(request), request.match_info["bucket"])
    key = object_key(request.match_info["path"])
    return await serve_object(request, _readable_object(request, bucket, key))


@route
async def download_public(request: web.Request) -> web.StreamResponse:
    """No JWT needed; only public buckets are served (a private bucket reads as not found)."""
    bucket = get_bucket(db_of(request), request.match_info["bucket"])
    if not bucket.public:
        raise errors.no_such_bucket()
    row = get_object(db_of(request), bucket.id, object_key(request.match_info["path"]))
    if row is None:
        raise errors.no_such_key()
    return await serve_object(request, row)


@route
async def info(request: web.Request) -> web.Response:
    bucket = get_bucket(db_of(request), request.match_info["bucket"])
    key = object_key(request.match_info["path"])
    row = _readable_object(request, bucket, key)
    metadata = row.get("metadata") or {}
    return web.json_response(
        {
            "id": row["id"],
            "name": row["name"],
            "version": row.get("content_sha256"),
            "bucket_id": row["bucket_id"],
            "size": metadata.get("size"),
            "content_type": metadata.get("mimetype"),
            "cache_control": metadata.get("cacheControl"),
            "etag": metadata.get("eTag"),
            "metadata": metadata.get("user_metadata") or {},
            "last_modified": row["updated_at"],
            "created_at": row["created_at"],
        }
    )


def _int_field(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise errors.invalid_request(f"{name}: {value!r} is not an integer from {low} to {high}")
    return value


def _folder_entry(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "id": None,
        "updated_at": None,
        "created_at": None,
        "last_accessed_at": None,
        "metadata": None,
    }


@route
async def list_objects(request: web.Request) -> web.Response:
    """One folder level under `prefix`: files with their metadata, sub-folders as entries with `id: null`."""
    claims = claims_of(request)
    db = db_of(request)
    bucket = get_bucket(db, request.match_info["bucket"])
    body = await read_json(request)
    prefix = body.get("prefix", "")
    search = body.get("search") or ""
    sort_by = body.get("sortBy") or {}
    if not isinstance(prefix, str) or not isinstance(search, str) or not isinstance(sort_by, dict):
        raise errors.invalid_request("prefix and search must be strings and sortBy an object {column, order}")
    limit = _int_field(body, "limit", 100, 1, MAX_LIST_LIMIT)
    offset = _int_field(body, "offset", 0, 0, 2**31)
    column = sort_by.get("column", "name")
    order = str(sort_by.get("order", "asc")).lower()
    if column not in SORT_COLUMNS or order not in ("asc", "desc"):
        raise errors.invalid_request(f"sortBy: column must be one of {', '.join(SORT_COLUMNS)} and order asc or desc")

    folder = prefix.strip("/")
    base = f"{folder}/" if folder else ""
    if base:
        object_key(folder)  # same rules as names: rejects control characters, dot segments, over-long prefixes
    rows, _ = db.select(
        "storage_objects",
        filters=[Filter("bucket_id", "eq", bucket.id)],
        predicate=Predicate("substr(name, 1, ?) = ?", (len(base), base)) if base else None,
    )
    membership = request.app[MEMBERSHIP]
    needle = search.lower()
    files: list[dict[str, Any]] = []
    folders: dict[str, dict[str, Any]] = {}
    for row in rows:
        if not can_access(claims, bucket, row["name"], "list", membership, row.get("owner")):
            continue
        segment, slash, _rest = row["name"][len(base) :].partition("/")
        if not segment.lower().startswith(needle):
            continue
        if slash:
            folders.setdefault(segment, _folder_entry(segment))
        else:
            files.append(object_json(row, name=segment))
    entries = list(folders.values()) + files

    def sort_key(entry: dict[str, Any]) -> tuple[bool, str]:
        value = entry.get(column)
        return (value is None, str(value or ""))  # Postgres: NULLs last ascending, first descending

    entries.sort(key=sort_key, reverse=order == "desc")
    return web.json_response(entries[offset : offset + limit])


def _delete_rows(request: web.Request, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    deleted = db_of(request).delete("storage_objects", filters=[Filter("id", "in", [r["id"] for r in rows])])
    release_blobs(request.app, {str(r["content_sha256"]) for r in deleted if r.get("content_sha256")})
    return deleted


@route
async def delete_many(request: web.Request) -> web.Response:
    """`{"prefixes": [names]}` → the objects actually deleted (names the caller may not delete are skipped)."""
    claims = claims_of(request)
    db = db_of(request)
    bucket = get_bucket(db, request.match_info["bucket"])
    prefixes = (await read_json(request)).get("prefixes")
    if (
        not isinstance(prefixes, list)
        or not 1 <= len(prefixes) <= MAX_DELETE_PREFIXES
        or not all(isinstance(p, str) for p in prefixes)
    ):
        raise errors.invalid_request(f"prefixes must be a list of 1 to {MAX_DELETE_PREFIXES} object names")
    membership = request.app[MEMBERSHIP]
    targets: dict[str, dict[str, Any]] = {}
    for name in prefixes:
        try:
            key = object_key(name)
        except errors.StorageError:
            continue
        row = get_object(db, bucket.id, key)
        if row is not None and can_access(claims, bucket, key, "delete", membership, row.get("owner")):
            targets[row["id"]] = row
    return web.json_response([object_json(r) for r in _delete_rows(request, list(targets.values()))])


@route
async def delete_one(request: web.Request) -> web.Response:
    claims = claims_of(request)
    db = db_of(request)
    bucket = get_bucket(db, request.match_info["bucket"])
    key = object_key(request.match_info["path"])
    row = get_object(db, bucket.id, key)
    if row is None or not can_access(claims, bucket, key, "delete", request.app[MEMBERSHIP], row.get("owner")):
        raise errors.no_such_key()
    _delete_rows(request, [row])
    return web.json_response({"message": "Successfully deleted"})


async def _transfer_args(request: web.Request) -> tuple[BucketInfo, str, BucketInfo, str]:
    body = await read_json(request)
    names = [body.get("bucketId"), body.get("sourceKey"), body.get("destinationKey")]
    if not all(isinstance(n, str) and n for n in names):
        raise errors.invalid_request("send {bucketId, sourceKey, destinationKey} (strings), destinationBucket optional")
    db = db_of(request)
    source_bucket = get_bucket(db, str(names[0]))
    target_name = body.get("destinationBucket") or source_bucket.id
    target_bucket = get_bucket(db, target_name) if isinstance(target_name, str) else source_bucket
    return source_bucket, object_key(str(names[1])), target_bucket, object_key(str(names[2]))


@route
async def move(request: web.Request) -> web.Response:
    claims = claims_of(request)
    source_bucket, source, target_bucket, target = await _transfer_args(request)
    db = db_of(request)
    membership = request.app[MEMBERSHIP]
    row = _readable_object(request, source_bucket, source)
    if not can_access(claims, source_bucket, source, "delete", membership, row.get("owner")) or not can_access(
        claims, target_bucket, target, "upload", membership, row.get("owner")
    ):
        raise errors.rls_violation()
    if get_object(db, target_bucket.id, target) is not None:
        raise errors.key_already_exists()
    db.update(
        "storage_objects", {"bucket_id": target_bucket.id, "name": target}, filters=[Filter("id", "eq", row["id"])]
    )
    return web.json_response({"message": "Successfully moved"})


@route
async def copy(request: web.Request) -> web.Response:
    claims = claims_of(request)
    source_bucket, source, target_bucket, target = await _transfer_args(request)
    db = db_of(request)
    row = _readable_object(request, source_bucket, source)
    if not can_access(claims, target_bucket, target, "upload", request.app[MEMBERSHIP], owner_of(claims)):
        raise errors.rls_violation()
    if get_object(db, target_bucket.id, target) is not None:
        raise errors.key_already_exists()
    new = {
        "bucket_id": target_bucket.id,
        "name": target,
        "owner": owner_of(claims),
        "metadata": row.get("metadata"),
        "content_sha256": row.get("content_sha256"),
    }
    created = db.insert("storage_objects", [new])[0]
    return web.json_response({"Id": created["id"], "Key": f"{target_bucket.id}/{target}"})
