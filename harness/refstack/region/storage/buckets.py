"""`/storage/v1/bucket…`: list, read, create, update, empty and delete buckets, each as the caller.

As storage-api does, every bucket route runs in a transaction with the caller's role and claims, so row-level
security on storage.buckets decides: the service role sees and changes every bucket; a user sees and changes
only what a project's policies on storage.buckets allow (none by default, so nothing). A write the policies
refuse, or one on a bucket the caller cannot see but which exists, is AccessDenied with HTTP 403 (the status of
storage-api's role checks); a bucket that does not exist is NoSuchBucket. The app's own bucket, `attachments`,
is created by its migration.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from aiohttp import web

from harness.refstack.region.state import CONFIG
from harness.refstack.region.storage import errors
from harness.refstack.region.storage.common import (
    BUCKET_EXISTS,
    bucket_id,
    claims_of,
    db_of,
    header_value,
    owner_id_of,
    owner_of,
    read_json,
    route,
)

_BUCKET_NAME = re.compile(r"[A-Za-z0-9_!\-.*'() &$@=;:+,?]{1,100}")
_SIZE = re.compile(r"\s*(\d+)\s*(B|KB|MB|GB)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}

_BUCKET_JSON = """json_build_object(
    'id', b.id, 'name', b.name, 'owner', coalesce(b.owner::text, ''), 'public', coalesce(b.public, false),
    'type', 'STANDARD', 'file_size_limit', b.file_size_limit, 'allowed_mime_types', b.allowed_mime_types,
    'created_at', b.created_at, 'updated_at', b.updated_at)"""
_LIST = f"select coalesce(json_agg({_BUCKET_JSON} order by b.name collate \"C\"), '[]') from storage.buckets b"
_READ = f"select {_BUCKET_JSON} from storage.buckets b where b.id = $1"
_CREATE = (
    "insert into storage.buckets (id, name, owner, owner_id, public, file_size_limit, allowed_mime_types)"
    " values ($1, $2, $3, $4, coalesce($5, false), $6, $7)"
)
# Only the settings the body names change ($2, $4, $6 say which); the others keep their value.
_UPDATE = f"""with changed as (
    update storage.buckets set
      public = case when $2 then $3 else public end,
      file_size_limit = case when $4 then $5 else file_size_limit end,
      allowed_mime_types = case when $6 then $7 else allowed_mime_types end,
      updated_at = now()
    where id = $1 returning 1)
  select (select count(*) from changed) as done, {BUCKET_EXISTS} as found"""
_EMPTY = f"""with bucket as (select id from storage.buckets where id = $1),
  gone as (delete from storage.objects o using bucket where o.bucket_id = bucket.id returning 1)
  select exists (select 1 from bucket) as done, {BUCKET_EXISTS} as found, (select count(*) from gone) as deleted"""
_DELETE = f"""with gone as (delete from storage.buckets where id = $1 returning 1)
  select (select count(*) from gone) as done, {BUCKET_EXISTS} as found"""


def _denied_or_missing(row: asyncpg.Record | None) -> None:
    """After a bucket write as the caller: nothing done means no such bucket, or one the caller may not touch."""
    if row is not None and row["done"]:
        return
    if row is not None and row["found"]:
        raise errors.bucket_access_denied("Access denied: the row-level security policies of storage.buckets")
    raise errors.no_such_bucket()


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


def _settings_within(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    """`_settings`, refusing a bucket limit over the global one with EntityTooLarge, as storage-api does."""
    settings = _settings(body)
    limit = settings.get("file_size_limit")
    if limit is not None and limit > request.app[CONFIG].storage_file_size_limit_bytes:
        raise errors.entity_too_large()
    return settings


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


@route
async def list_buckets(request: web.Request) -> web.Response:
    async with db_of(request).as_caller(claims_of(request), read_only=True) as conn:
        body = await conn.fetchval(_LIST)
    return web.Response(text=body, content_type="application/json")


@route
async def read_bucket(request: web.Request) -> web.Response:
    claims = claims_of(request)
    async with db_of(request).as_caller(claims, read_only=True) as conn:
        body = await conn.fetchval(_READ, bucket_id(request.match_info["bucket"]))
    if body is None:
        raise errors.no_such_bucket()
    return web.Response(text=body, content_type="application/json")


@route
async def create_bucket(request: web.Request) -> web.Response:
    claims = claims_of(request)
    body = await read_json(request)
    name = body.get("name", body.get("id"))
    new_id = body.get("id", name)
    for value in (name, new_id):
        if not isinstance(value, str) or not _BUCKET_NAME.fullmatch(value) or value.strip(".") == "":
            raise errors.invalid_bucket_name(str(value)[:100])
    settings = _settings_within(request, body)
    try:
        async with db_of(request).as_caller(claims) as conn:
            await conn.execute(
                _CREATE,
                new_id,
                name,
                owner_of(claims),
                owner_id_of(claims),
                settings.get("public"),
                settings.get("file_size_limit"),
                settings.get("allowed_mime_types"),
            )
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == "23505":
            raise errors.bucket_already_exists() from None
        if exc.sqlstate == "42501":
            raise errors.bucket_access_denied("new row violates row-level security policy") from None
        raise
    return web.json_response({"name": new_id})


@route
async def update_bucket(request: web.Request) -> web.Response:
    claims = claims_of(request)
    target = bucket_id(request.match_info["bucket"])
    settings = _settings_within(request, await read_json(request))
    args: list[Any] = [target]
    for column in ("public", "file_size_limit", "allowed_mime_types"):
        args += [column in settings, settings.get(column)]
    async with db_of(request).as_caller(claims) as conn:
        _denied_or_missing(await conn.fetchrow(_UPDATE, *args))
    return web.json_response({"message": "Successfully updated"})


@route
async def empty_bucket(request: web.Request) -> web.Response:
    """Delete every object the caller may delete (all of them for the service role); bodies go with them."""
    claims = claims_of(request)
    async with db_of(request).as_caller(claims) as conn:
        _denied_or_missing(await conn.fetchrow(_EMPTY, bucket_id(request.match_info["bucket"])))
    return web.json_response({"message": "Successfully emptied"})


@route
async def delete_bucket(request: web.Request) -> web.Response:
    claims = claims_of(request)
    try:
        async with db_of(request).as_caller(claims) as conn:
            _denied_or_missing(await conn.fetchrow(_DELETE, bucket_id(request.match_info["bucket"])))
    except asyncpg.ForeignKeyViolationError:
        raise errors.bucket_not_empty() from None
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
