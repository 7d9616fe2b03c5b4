"""`/storage/v1/bucket…`: list, read, create, update, empty and delete buckets.

Reading bucket settings needs any valid JWT (the app reads them to learn the size limit); creating, updating,
emptying and deleting need the service role. A real project decides that with policies on `storage.buckets`;
with none (the usual setup) only the service role can write there, which is what this reproduces.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from harness.refstack.region.db import Database, Filter
from harness.refstack.region.storage import errors
from harness.refstack.region.storage.common import (
    claims_of,
    db_of,
    get_bucket,
    header_value,
    read_json,
    release_blobs,
    route,
)

DEFAULT_BUCKET = "attachments"
"""The bucket the app stores message attachments in; created (private) at startup when missing."""

_BUCKET_NAME = re.compile(r"[A-Za-z0-9_!\-.*'() &$@=;:+,?]{1,100}")
_SIZE = re.compile(r"\s*(\d+)\s*(B|KB|MB|GB)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def _require_service(request: web.Request) -> None:
    if not claims_of(request).is_service:
        raise errors.role_required("service_role")


def bucket_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "owner": row.get("owner") or "",
        "public": bool(row["public"]),
        "type": "STANDARD",
        "file_size_limit": row.get("file_size_limit"),
        "allowed_mime_types": row.get("allowed_mime_types"),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _size_limit(value: Any) -> int | None:
    """`file_size_limit`: null, a number of bytes, or a string like "20MB" / "30KB" / "3B" (as Supabase takes)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53:
        return value
    if isinstance(value, str) and (m := _SIZE.fullmatch(value)) and len(value) < 32:
        return int(m.group(1)) * _UNITS[(m.group(2) or "").upper()]
    raise errors.invalid_request(
        f"file_size_limit: {value!r} is not a size; use a number of bytes or a string like 20GB / 20MB / 30KB / 3B"
    )


def _mime_types(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.invalid_request(f"allowed_mime_types: {value!r} is not a list of strings like ['image/*']")
    return [header_value(v, "allowed_mime_types entry") for v in value]


def _settings(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "public" in body:
        if not isinstance(body["public"], bool):
            raise errors.invalid_request(f"public: {body['public']!r} is not a boolean (true or false)")
        out["public"] = body["public"]
    if "file_size_limit" in body:
        out["file_size_limit"] = _size_limit(body["file_size_limit"])
    if "allowed_mime_types" in body:
        out["allowed_mime_types"] = _mime_types(body["allowed_mime_types"])
    return out


def ensure_default_bucket(db: Database) -> None:
    """Create the private `attachments` bucket if missing (primary only: a replica receives it by replication)."""
    if db.read_only or db.get("storage_buckets", id=DEFAULT_BUCKET) is not None:
        return
    db.insert("storage_buckets", [{"id": DEFAULT_BUCKET, "name": DEFAULT_BUCKET, "public": False}], internal=True)


@route
async def list_buckets(request: web.Request) -> web.Response:
    claims_of(request)
    rows, _ = db_of(request).select("storage_buckets")
    return web.json_response([bucket_json(r) for r in sorted(rows, key=lambda r: str(r["name"]))])


@route
async def read_bucket(request: web.Request) -> web.Response:
    claims_of(request)
    db = db_of(request)
    bucket = get_bucket(db, request.match_info["bucket"])
    row = db.get("storage_buckets", id=bucket.id)
    assert row is not None
    return web.json_response(bucket_json(row))


@route
async def create_bucket(request: web.Request) -> web.Response:
    claims = claims_of(request)
    if not claims.is_service:
        raise errors.role_required("service_role")
    body = await read_json(request)
    name = body.get("name", body.get("id"))
    bucket_id = body.get("id", name)
    for value in (name, bucket_id):
        if not isinstance(value, str) or not _BUCKET_NAME.fullmatch(value) or value.strip(".") == "":
            raise errors.invalid_bucket_name(str(value)[:100])
    db = db_of(request)
    if db.get("storage_buckets", id=bucket_id) is not None:
        raise errors.bucket_already_exists()
    db.insert("storage_buckets", [{"id": bucket_id, "name": name, "owner": None, **_settings(body)}])
    return web.json_response({"name": bucket_id})


@route
async def update_bucket(request: web.Request) -> web.Response:
    _require_service(request)
    db = db_of(request)
    bucket = get_bucket(db, request.match_info["bucket"])
    settings = _settings(await read_json(request))
    if settings:
        db.update("storage_buckets", settings, filters=[Filter("id", "eq", bucket.id)])
    return web.json_response({"message": "Successfully updated"})


def _delete_objects(request: web.Request, bucket_id: str) -> None:
    deleted = db_of(request).delete("storage_objects", filters=[Filter("bucket_id", "eq", bucket_id)])
    release_blobs(request.app, {str(r["content_sha256"]) for r in deleted if r.get("content_sha256")})


@route
async def empty_bucket(request: web.Request) -> web.Response:
    _require_service(request)
    bucket = get_bucket(db_of(request), request.match_info["bucket"])
    _delete_objects(request, bucket.id)
    return web.json_response({"message": "Successfully emptied"})


@route
async def delete_bucket(request: web.Request) -> web.Response:
    _require_service(request)
    db = db_of(request)
    bucket = get_bucket(db, request.match_info["bucket"])
    rows, _ = db.select("storage_objects", columns=["id"], filters=[Filter("bucket_id", "eq", bucket.id)], limit=1)
    if rows:
        raise errors.bucket_not_empty()
    db.delete("storage_buckets", filters=[Filter("id", "eq", bucket.id)])
    return web.json_response({"message": "Successfully deleted"})


def add_routes(router: web.UrlDispatcher, prefix: str) -> None:
    router.add_get(f"{prefix}/bucket", list_buckets)
    router.add_get(f"{prefix}/bucket/", list_buckets)
    router.add_post(f"{prefix}/bucket", create_bucket)
    router.add_post(f"{prefix}/bucket/", create_bucket)
    router.add_post(f"{prefix}/bucket/{{bucket}}/empty", empty_bucket)
    router.add_get(f"{prefix}/bucket/{{bucket}}", read_bucket)
    router.add_put(f"{prefix}/bucket/{{bucket}}", update_bucket)
    router.add_delete(f"{prefix}/bucket/{{bucket}}", delete_bucket)
