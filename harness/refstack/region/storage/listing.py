"""`POST /storage/v1/object/list/<bucket>`: one folder level under `prefix`, as storage-api's `storage.search`.

Files directly under the prefix come with their metadata; deeper names show as one folder entry each (`id`
null). Postgres does all of it in one statement as the caller, so the policies on storage.objects decide which
objects (and so which folders) the caller sees, and it returns the JSON array itself. Names compare in code
point order (the cluster's C.UTF-8 collation), so `Apple.txt` sorts before `a.txt`, as on Supabase.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from harness.refstack.region.storage import errors
from harness.refstack.region.storage.common import (
    BUCKET_EXISTS,
    bucket_id,
    claims_of,
    db_of,
    object_key,
    read_json,
    route,
    storable_text,
)

MAX_LIST_LIMIT = 10_000

_SORT_COLUMNS = ("name", "updated_at", "created_at", "last_accessed_at")
"""sortBy.column values; each has its own ORDER BY below (no identifier ever comes from the request)."""

_ORDER_BY = {
    ("name", "asc"): "e.name asc",
    ("name", "desc"): "e.name desc",
    ("updated_at", "asc"): "e.updated_at asc nulls last, e.name asc",
    ("updated_at", "desc"): "e.updated_at desc nulls first, e.name desc",
    ("created_at", "asc"): "e.created_at asc nulls last, e.name asc",
    ("created_at", "desc"): "e.created_at desc nulls first, e.name desc",
    ("last_accessed_at", "asc"): "e.last_accessed_at asc nulls last, e.name asc",
    ("last_accessed_at", "desc"): "e.last_accessed_at desc nulls first, e.name desc",
}

# $1 bucket, $2 the folder with a trailing "/" ('' at the root), $3 the upper bound of names under it,
# $4 the search prefix of an entry's name (lowercased), $5 limit, $6 offset. The range on name keeps the scan on
# the (bucket_id, name) index, so the policies only ever see rows under the prefix.
_LIST = """with under as (
    select o.*, substr(o.name, length($2) + 1) as rest from storage.objects o
    where o.bucket_id = $1 and o.name >= $2 and ($3::text is null or o.name < $3)),
  entries as (
    select distinct on (split_part(rest, '/', 1)) split_part(rest, '/', 1) as name, null::uuid as id,
      null::timestamptz as updated_at, null::timestamptz as created_at, null::timestamptz as last_accessed_at,
      null::jsonb as metadata, null::text as bucket_id, null::text as owner, null::text as owner_id, true as folder
    from under where strpos(rest, '/') > 0
    union all
    select rest, id, updated_at, created_at, last_accessed_at, metadata, bucket_id, coalesce(owner::text, ''),
      coalesce(owner_id, ''), false
    from under where strpos(rest, '/') = 0),
  page as (
    select * from entries e where starts_with(lower(e.name), $4) order by {order} limit $5 offset $6)
  select {bucket_exists} as found, coalesce(json_agg(
    case when e.folder then json_build_object('name', e.name, 'id', null, 'updated_at', null, 'created_at', null,
      'last_accessed_at', null, 'metadata', null)
    else json_build_object('name', e.name, 'bucket_id', e.bucket_id, 'owner', e.owner, 'owner_id', e.owner_id,
      'id', e.id, 'updated_at', e.updated_at, 'created_at', e.created_at, 'last_accessed_at', e.last_accessed_at,
      'metadata', e.metadata) end
    order by {order}), '[]') as entries
  from page e"""
_QUERIES = {
    sort: _LIST.format(order=order, bucket_exists=BUCKET_EXISTS.replace("$1", "$1::text"))
    for sort, order in _ORDER_BY.items()
}


def _int_field(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise errors.invalid_request(f"{name}: {value!r} is not an integer from {low} to {high}")
    return value


def _upper_bound(base: str) -> str | None:
    """The least string above every name starting with `base` (which ends in "/": "/" + 1 is "0")."""
    return base[:-1] + "0" if base else None


@route
async def list_objects(request: web.Request) -> web.Response:
    claims = claims_of(request)
    target = bucket_id(request.match_info["bucket"])
    body = await read_json(request)
    prefix = body.get("prefix", "")
    search = body.get("search") or ""
    sort_by = body.get("sortBy") or {}
    if not isinstance(prefix, str) or not isinstance(search, str) or not isinstance(sort_by, dict):
        raise errors.invalid_request("prefix and search must be strings and sortBy an object {column, order}")
    if not storable_text(search):
        raise errors.invalid_request("search must be UTF-8 text without NUL characters")
    limit = _int_field(body, "limit", 100, 1, MAX_LIST_LIMIT)
    offset = _int_field(body, "offset", 0, 0, 2**31 - 1)
    column = sort_by.get("column", "name")
    order = str(sort_by.get("order", "asc")).lower()
    if column not in _SORT_COLUMNS or order not in ("asc", "desc"):
        raise errors.invalid_request(f"sortBy: column must be one of {', '.join(_SORT_COLUMNS)} and order asc or desc")

    folder = prefix.strip("/")
    if folder:
        object_key(folder)  # same rules as names: rejects control characters, dot segments, over-long prefixes
    base = f"{folder}/" if folder else ""
    async with db_of(request).as_caller(claims, read_only=True) as conn:
        row = await conn.fetchrow(
            _QUERIES[(column, order)], target, base, _upper_bound(base), search.lower(), limit, offset
        )
    if not row["found"]:
        raise errors.no_such_bucket()
    return web.Response(text=row["entries"], content_type="application/json")
