"""`POST /storage/v1/object/list-v2/<bucket>`: cursor-paginated listing, as storage-api's listObjectsV2.

    body      {prefix, limit (1…, capped at 1000), cursor, with_delimiter, sortBy: {column: name|created_at|
              updated_at, order: asc|desc}}
    answer    {hasNext, folders, objects} and, when there is more, nextCursor (opaque) and nextCursorKey

`prefix` is a plain string prefix (not a folder: "ph" matches "photo.jpg" and "phone/…"). Without `with_delimiter`
every object under it is listed, `{id, name, metadata, updated_at, created_at, last_accessed_at}`, names in full.
With it, names that continue past a "/" after the prefix collapse into one folder per common prefix (`name` ends
in "/", `id` null; sorted by time, a folder's times are its oldest object's created_at, as storage-api's
search_by_timestamp), and every entry carries `key`, the path segment at the prefix's depth. Entries sort by the
column then the name in code-point order; a folder sorts by its common prefix ("a/" after "a.txt").

The cursor is storage-api's: base64 of `l:<last key>`, `o:<order>`, `c:<column>`, `a:<last time>` lines; its
order and column win over the body's. The last key of a folder page is the folder's common prefix (with its "/"),
so the next page starts after the folder. It runs as the caller, so the policies on storage.objects decide what
is listed, as with storage-api's SECURITY INVOKER search functions.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from typing import Any

from aiohttp import web

from harness.refstack.region.storage import errors
from harness.refstack.region.storage.common import (
    BUCKET_EXISTS,
    bucket_id,
    claims_of,
    db_of,
    read_json,
    route,
    storable_text,
)

MAX_KEYS = 1000
"""storage-api's cap on one page."""

_COLUMNS = ("name", "created_at", "updated_at")
_CURSOR_PARTS = {"l": "start_after", "o": "order", "c": "column", "a": "after"}

# $1 bucket, $2 prefix, $3 with_delimiter, $4 page size + 1, $5 cursor key (null: first page), $6 cursor time,
# $7 levels (the prefix's depth: its "/" count + 1). {folder_time}, {position} and {order} come from _query only.
_LIST = """with raw as (
    select o.name, o.id, o.updated_at, o.created_at, o.last_accessed_at, o.metadata,
      case when $3 and strpos(substr(o.name, length($2) + 1), '/') > 0
        then left(o.name, length($2) + strpos(substr(o.name, length($2) + 1), '/')) end as common
    from storage.objects o where o.bucket_id = $1::text and starts_with(o.name, $2)),
  entries as (
    select common as sort_key, rtrim(common, '/') as name, null::uuid as id, {folder_time} as updated_at,
      {folder_time} as created_at, null::timestamptz as last_accessed_at, null::jsonb as metadata, true as folder
    from raw where common is not null group by common
    union all
    select name, name, id, updated_at, created_at, last_accessed_at, metadata, false from raw where common is null),
  page as (
    select * from entries e where $5::text is null or {position} order by {order} limit $4)
  select {bucket_exists} as found, $6::timestamptz as cursor_after, e.sort_key, e.folder, e.cursor_time, e.entry from (
    select p.*, {cursor_time} as cursor_time,
      case when not $3 then json_build_object('id', p.id, 'name', p.name, 'metadata', p.metadata,
        'updated_at', p.updated_at, 'created_at', p.created_at, 'last_accessed_at', p.last_accessed_at)
      else json_build_object('key', split_part(p.name, '/', $7), 'name', p.name || case when p.folder then '/' else ''
        end, 'id', p.id, 'updated_at', p.updated_at, 'created_at', p.created_at,
        'last_accessed_at', p.last_accessed_at, 'metadata', p.metadata) end::text as entry
    from page p) e
  right join (select 1) one on true
  order by {order}"""


def _query(column: str, order: str) -> str:
    if column == "name":
        position = f'e.sort_key collate "C" {">" if order == "asc" else "<"} $5'
        ordering = f'e.sort_key collate "C" {order}'
        cursor_time = "null::timestamptz"
    else:
        time = f"coalesce(date_trunc('milliseconds', e.{column}), 'epoch'::timestamptz)"
        position = (
            f'row({time}, e.sort_key collate "C") {">" if order == "asc" else "<"}'
            " row(coalesce($6::timestamptz, 'epoch'::timestamptz), $5)"
        )
        ordering = f'{time} {order}, e.sort_key collate "C" {order}'
        cursor_time = f"p.{column}"
    return _LIST.format(
        folder_time="null::timestamptz" if column == "name" else "min(created_at)",
        position=position,
        order=ordering,
        cursor_time=cursor_time,
        bucket_exists=BUCKET_EXISTS.replace("$1", "$1::text"),
    )


_QUERIES = {(c, o): _query(c, o) for c in _COLUMNS for o in ("asc", "desc")}


def _decode_cursor(cursor: str) -> dict[str, str]:
    """storage-api's decodeContinuationToken: InvalidParameter for anything that is not its line format."""
    try:
        text = base64.b64decode(cursor, validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise errors.invalid_parameter("continuation token") from None
    found = {"start_after": "", "order": "asc"}
    for part in text.split("\n"):
        if len(part) < 2 or part[1] != ":" or part[0].isspace() or part[0] not in _CURSOR_PARTS:
            raise errors.invalid_parameter("continuation token")
        found[_CURSOR_PARTS[part[0]]] = part[2:]
    return found


def _encode_cursor(start_after: str, order: str, column: str, after: str | None) -> str:
    lines = [f"l:{start_after}", f"o:{order}", f"c:{column}"] + ([f"a:{after}"] if after else [])
    return base64.b64encode("\n".join(lines).encode("utf-8")).decode("ascii")


def _bad(message: str) -> errors.StorageError:
    """A body the route's JSON schema refuses: Fastify's validation wording, in Storage's error shape."""
    return errors.StorageError(400, "InvalidRequest", message, error="Bad Request")


def _options(body: dict[str, Any]) -> tuple[str, int, str | None, bool, str, str]:
    prefix = body.get("prefix", "")
    if not isinstance(prefix, str) or not storable_text(prefix):
        raise _bad("body/prefix must be string")
    limit = body.get("limit", MAX_KEYS)
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise _bad("body/limit must be integer")
    if limit < 1:
        raise _bad("body/limit must be >= 1")
    cursor = body.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise _bad("body/cursor must be string")
    delimited = body.get("with_delimiter", False)
    if not isinstance(delimited, bool):
        raise _bad("body/with_delimiter must be boolean")
    sort_by = body.get("sortBy", {"column": "name"})
    if not isinstance(sort_by, dict) or "column" not in sort_by:
        raise _bad("body/sortBy must have required property 'column'")
    column, order = sort_by["column"], sort_by.get("order", "asc")
    if column not in _COLUMNS:
        raise _bad("body/sortBy/column must be equal to one of the allowed values")
    if order not in ("asc", "desc"):
        raise _bad("body/sortBy/order must be equal to one of the allowed values")
    return prefix, min(limit, MAX_KEYS), cursor or None, delimited, column, order


def _after(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise errors.invalid_parameter("continuation token") from None


@route
async def list_objects_v2(request: web.Request) -> web.Response:
    claims = claims_of(request)
    target = bucket_id(request.match_info["bucket"])
    prefix, limit, cursor, delimited, column, order = _options(await read_json(request))
    start_after: str | None = None
    after: datetime.datetime | None = None
    if cursor is not None:
        decoded = _decode_cursor(cursor)
        column = decoded.get("column", column) if decoded.get("column") in _COLUMNS else column
        order = decoded["order"] if decoded["order"] in ("asc", "desc") else "asc"
        start_after = decoded["start_after"] or None
        after = _after(decoded.get("after"))
    if start_after is not None and not storable_text(start_after):
        raise errors.invalid_parameter("continuation token")
    levels = prefix.count("/") + 1
    async with db_of(request).as_caller(claims, read_only=True) as conn:
        rows = await conn.fetch(
            _QUERIES[(column, order)], target, prefix, delimited, limit + 1, start_after, after, levels
        )
    if not rows or not rows[0]["found"]:
        raise errors.no_such_bucket()
    rows = [r for r in rows if r["entry"] is not None]
    has_next = len(rows) > limit
    page = rows[:limit]
    folders = [r["entry"] for r in page if r["folder"]]
    objects = [r["entry"] for r in page if not r["folder"]]
    text = f'{{"hasNext":{json.dumps(has_next)},'
    if has_next:
        last = page[-1]
        stamp = last["cursor_time"]
        last_time = (
            stamp.astimezone(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if stamp else None
        )
        last_key = last["sort_key"].rstrip("/") if last["folder"] else last["sort_key"]
        next_cursor = _encode_cursor(last["sort_key"], order, column, last_time)
        text += f'"nextCursor":{json.dumps(next_cursor)},"nextCursorKey":{json.dumps(last_key)},'
    text += f'"folders":[{",".join(folders)}],"objects":[{",".join(objects)}]}}'
    return web.Response(text=text, content_type="application/json")
