"""`/storage/v1/object…` reads and deletes: download (authenticated and public), info, delete, move, copy.

Each runs as the caller (`Database.as_caller`), so the policies on storage.objects decide. A read they refuse
answers NoSuchKey, as storage-api does (row-level security hides the row rather than refusing it); a write they
refuse is AccessDenied "new row violates row-level security policy". The bucket itself is looked up with
elevated rights (`storage.harness_bucket`), as storage-api does, so a missing bucket is NoSuchBucket for everyone.
Reads do not bump `last_accessed_at`: that would be a replicated write per download.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
from aiohttp import web

from harness.model.keys import Claims
from harness.refstack.region.storage import errors
from harness.refstack.region.storage.bodies import serve_body
from harness.refstack.region.storage.common import (
    BUCKET_EXISTS,
    OBJECT_JSON,
    bucket_id,
    claims_of,
    db_of,
    object_key,
    owner_id_of,
    owner_of,
    read_json,
    route,
)

MAX_DELETE_PREFIXES = 1000
"""Most objects one `DELETE /object/<bucket>` may name (Supabase's default limit)."""

# One row when the bucket exists; the object's columns are null when the caller cannot see it (or it is absent).
_DOWNLOAD = """select o.name, o.metadata ->> 'mimetype' as mimetype, o.metadata ->> 'cacheControl' as cache_control,
    o.metadata ->> 'eTag' as etag, o.updated_at, body.content
  from storage.harness_bucket($1) bk
  left join storage.objects o on o.bucket_id = bk.id and o.name = $2
  left join harness_internal.object_bodies body on body.sha256 = o.version"""
# The public route reads as storage-api's superuser does, after checking the bucket is public.
_DOWNLOAD_PUBLIC = """select bk.public, o.name, o.metadata ->> 'mimetype' as mimetype,
    o.metadata ->> 'cacheControl' as cache_control, o.metadata ->> 'eTag' as etag, o.updated_at, body.content
  from storage.buckets bk
  left join storage.objects o on o.bucket_id = bk.id and o.name = $2
  left join harness_internal.object_bodies body on body.sha256 = o.version
  where bk.id = $1"""
# storage-api's info renderer: size, type, cache control and ETag from the object's metadata, its user metadata.
_INFO = """select json_build_object(
    'id', o.id, 'name', o.name, 'version', o.version, 'bucket_id', o.bucket_id,
    'size', (o.metadata ->> 'size')::bigint, 'content_type', o.metadata ->> 'mimetype',
    'cache_control', o.metadata ->> 'cacheControl', 'etag', o.metadata ->> 'eTag',
    'metadata', o.user_metadata, 'last_modified', o.updated_at, 'created_at', o.created_at)::text as info,
    o.metadata ->> 'eTag' as etag, o.metadata ->> 'cacheControl' as cache_control
  from storage.objects o where o.bucket_id = $1 and o.name = $2"""
_BUCKET_PUBLIC = "select public from storage.buckets where id = $1"
# Rows the caller's DELETE policy does not reach are simply not deleted (and not listed as deleted).
_DELETE = f"""with gone as (
    delete from storage.objects o where o.bucket_id = $1 and o.name = any($2::text[])
    returning {OBJECT_JSON} as j)
  select {BUCKET_EXISTS} as found, (select count(*) from gone) as count,
    coalesce((select json_agg(j) from gone), '[]') as deleted"""
# A move is a copy plus a delete (storage-api creates the destination and removes the source): the caller needs
# the INSERT policy at the destination and the DELETE (and SELECT) policy at the source. One statement, so the
# body is never unreferenced in between; the object keeps its id.
_MOVE = """with src as (
    delete from storage.objects where bucket_id = $1 and name = $2
    returning id, owner, owner_id, metadata, user_metadata, version, created_at),
  moved as (
    insert into storage.objects (id, bucket_id, name, owner, owner_id, metadata, user_metadata, version, created_at)
    select id, $3, $4, owner, owner_id, metadata, user_metadata, version, created_at from src)
  select (select count(*) from src) as moved, (select id from src) as id,
    exists (select 1 from storage.objects where bucket_id = $1 and name = $2) as visible"""
# The copy holds the body's advisory lock (shared) so a concurrent delete of the source keeps the body. With
# `x-upsert: true` an existing destination is replaced (keeping its id), which needs the UPDATE policy there too.
_COPY = """with src as (
    select o.metadata, o.user_metadata, o.version,
      pg_advisory_xact_lock_shared(storage.harness_body_lock_class(), hashtext(o.version))
    from storage.objects o where o.bucket_id = $1 and o.name = $2),
  copied as (
    insert into storage.objects as o (id, bucket_id, name, owner, owner_id, metadata, user_metadata, version)
    select $5, $3, $4, $6, $7, metadata, user_metadata, version from src
    {on_conflict}
    returning o.id, json_build_object('version', o.version, 'user_metadata', o.user_metadata)::jsonb
      || {object_json}::jsonb as j)
  select (select count(*) from src) as copied, (select id from copied) as id, (select j from copied)::text as object"""
_COPY_INSERT = _COPY.format(on_conflict="", object_json=OBJECT_JSON)
_COPY_UPSERT = _COPY.format(
    on_conflict="""on conflict (bucket_id, name) do update set owner = excluded.owner, owner_id = excluded.owner_id,
      metadata = excluded.metadata, user_metadata = excluded.user_metadata, version = excluded.version,
      updated_at = now()""",
    object_json=OBJECT_JSON,
)
_BUCKETS_EXIST = """select exists (select 1 from storage.harness_bucket($1)) as a,
  exists (select 1 from storage.harness_bucket($2)) as b"""


def _serve_row(request: web.Request, row: asyncpg.Record | None) -> web.StreamResponse:
    if row is None:
        raise errors.no_such_bucket()
    if row["name"] is None or row["content"] is None:
        raise errors.no_such_key()
    return serve_body(request, row)


@route
async def download(request: web.Request) -> web.StreamResponse:
    claims = claims_of(request)
    target, key = bucket_id(request.match_info["bucket"]), object_key(request.match_info["path"])
    async with db_of(request).as_caller(claims, read_only=True) as conn:
        row = await conn.fetchrow(_DOWNLOAD, target, key)
    return _serve_row(request, row)


@route
async def download_public(request: web.Request) -> web.StreamResponse:
    """No JWT needed; only public buckets are served (a private bucket reads as not found)."""
    target, key = bucket_id(request.match_info["bucket"]), object_key(request.match_info["path"])
    row = await db_of(request).admin.fetchrow(_DOWNLOAD_PUBLIC, target, key)
    if row is None or not row["public"]:
        raise errors.no_such_bucket()
    return _serve_row(request, row)


async def _info(request: web.Request, claims: Claims | None, *, public_route: bool) -> web.Response:
    """storage-api's getObjectInfo: the bucket looked up with elevated rights; without a (valid) JWT only a public
    bucket answers; a public bucket (or the public route) is read with elevated rights, others as the caller."""
    target, key = bucket_id(request.match_info["bucket"]), object_key(request.match_info["path"])
    db = db_of(request)
    public = await db.admin.fetchval(_BUCKET_PUBLIC, target)
    if public is None or (claims is None and not public):
        raise errors.no_such_bucket()
    if public or public_route or claims is None:
        row = await db.admin.fetchrow(_INFO, target, key)
    else:
        async with db.as_caller(claims, read_only=True) as conn:
            row = await conn.fetchrow(_INFO, target, key)
    if row is None:
        raise errors.no_such_key()
    headers = {"ETag": row["etag"] or "", "Cache-Control": row["cache_control"] or "no-cache"}
    return web.Response(text=row["info"], content_type="application/json", headers=headers)


@route
async def info(request: web.Request) -> web.Response:
    """`/object/info/<b>/<path>` takes a missing or invalid JWT as no JWT (storage-api's allowInvalidJwt)."""
    try:
        claims: Claims | None = claims_of(request)
    except errors.StorageError:
        claims = None
    return await _info(request, claims, public_route=False)


@route
async def info_authenticated(request: web.Request) -> web.Response:
    return await _info(request, claims_of(request), public_route=False)


@route
async def info_public(request: web.Request) -> web.Response:
    return await _info(request, None, public_route=True)


def _names(prefixes: Any) -> list[str]:
    if (
        not isinstance(prefixes, list)
        or not 1 <= len(prefixes) <= MAX_DELETE_PREFIXES
        or not all(isinstance(p, str) for p in prefixes)
    ):
        raise errors.invalid_request(f"prefixes must be a list of 1 to {MAX_DELETE_PREFIXES} object names")
    names = []
    for name in prefixes:
        try:
            names.append(object_key(name))
        except errors.StorageError:
            continue  # a name that cannot exist deletes nothing
    return names


@route
async def delete_many(request: web.Request) -> web.Response:
    """`{"prefixes": [names]}` → the objects actually deleted (names the caller may not delete are skipped)."""
    claims = claims_of(request)
    target = bucket_id(request.match_info["bucket"])
    names = _names((await read_json(request)).get("prefixes"))
    async with db_of(request).as_caller(claims) as conn:
        row = await conn.fetchrow(_DELETE, target, names)
    if not row["found"]:
        raise errors.no_such_bucket()
    return web.Response(text=row["deleted"], content_type="application/json")


@route
async def delete_one(request: web.Request) -> web.Response:
    claims = claims_of(request)
    target, key = bucket_id(request.match_info["bucket"]), object_key(request.match_info["path"])
    async with db_of(request).as_caller(claims) as conn:
        row = await conn.fetchrow(_DELETE, target, [key])
    if not row["found"]:
        raise errors.no_such_bucket()
    if not row["count"]:
        raise errors.no_such_key()
    return web.json_response({"message": "Successfully deleted"})


async def _transfer_args(request: web.Request) -> tuple[str, str, str, str]:
    body = await read_json(request)
    names = [body.get("bucketId"), body.get("sourceKey"), body.get("destinationKey")]
    if not all(isinstance(n, str) and n for n in names):
        raise errors.invalid_request("send {bucketId, sourceKey, destinationKey} (strings), destinationBucket optional")
    source_bucket = bucket_id(str(names[0]))
    destination = body.get("destinationBucket")
    target_bucket = bucket_id(destination) if isinstance(destination, str) and destination else source_bucket
    return source_bucket, object_key(str(names[1])), target_bucket, object_key(str(names[2]))


async def _check_buckets(conn: asyncpg.Connection, source_bucket: str, target_bucket: str) -> None:
    exist = await conn.fetchrow(_BUCKETS_EXIST, source_bucket, target_bucket)
    if not (exist["a"] and exist["b"]):
        raise errors.no_such_bucket()


@route
async def move(request: web.Request) -> web.Response:
    claims = claims_of(request)
    source_bucket, source, target_bucket, target = await _transfer_args(request)
    async with db_of(request).as_caller(claims) as conn:
        await _check_buckets(conn, source_bucket, target_bucket)
        row = await conn.fetchrow(_MOVE, source_bucket, source, target_bucket, target)
    if not row["moved"]:
        # Visible but not deletable: the policies refuse the move; invisible: as if absent.
        raise errors.rls_violation() if row["visible"] else errors.no_such_key()
    return web.json_response({"message": "Successfully moved", "Id": str(row["id"]), "Key": target})


@route
async def copy(request: web.Request) -> web.Response:
    """`{Id, Key: "<bucket>/<key>", …the new object's columns}`; `x-upsert: true` replaces an existing one."""
    claims = claims_of(request)
    source_bucket, source, target_bucket, target = await _transfer_args(request)
    statement = _COPY_UPSERT if request.headers.get("x-upsert") == "true" else _COPY_INSERT
    async with db_of(request).as_caller(claims) as conn:
        await _check_buckets(conn, source_bucket, target_bucket)
        row = await conn.fetchrow(
            statement, source_bucket, source, target_bucket, target, uuid.uuid4(), owner_of(claims),
            owner_id_of(claims),
        )  # fmt: skip
    if not row["copied"]:
        raise errors.no_such_key()
    head = json.dumps({"Id": str(row["id"]), "Key": f"{target_bucket}/{target}"})
    return web.Response(text=f"{head[:-1]}, {row['object'][1:]}", content_type="application/json")
