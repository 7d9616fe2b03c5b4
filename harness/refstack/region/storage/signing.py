"""Signed URLs: `POST /object/sign/<bucket>/<path>` (and the batch form) mint them, `GET …?token=` serves them.

The token is an HS256 JWT over the project secret with claims `{"url": "<bucket>/<path>", "scope": "download",
"iat", "exp"}`, as Supabase Storage signs it (an upload token, scope "upload", is refused here). It names one
object, so it cannot be replayed for another path, and it carries no `role`, so it is useless as a bearer token.
The returned `signedURL` is relative to the storage root (`/object/sign/…?token=…`); storage3 joins it onto
`…/storage/v1/`.

Signing runs as the caller: only objects the caller's policies let it read can be signed (others are NoSuchKey,
as if absent). Serving a signed URL reads with elevated rights, as storage-api does: the token is the
authorisation, and it names exactly one object.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import jwt
from aiohttp import web

from harness.model import keys
from harness.model.keys import Claims
from harness.refstack.region.state import CONFIG
from harness.refstack.region.storage import errors
from harness.refstack.region.storage.bodies import serve_body
from harness.refstack.region.storage.common import (
    bucket_id,
    claims_of,
    db_of,
    object_key,
    read_json,
    route,
)
from harness.refstack.region.storage.errors import StorageError
from harness.refstack.region.storage.upload_signed import SCOPE_DOWNLOAD, download_scoped

MAX_EXPIRES_IN_S = 10 * 365 * 24 * 3600
"""Longest signed-URL lifetime accepted (ten years; Supabase itself only needs a positive integer)."""

_NOT_ACCESSIBLE = "Either the object does not exist or you do not have access to it"


def _expires_in(body: dict[str, Any]) -> int:
    """`expiresIn` in seconds; storage3 sends it as a string ("60"), other clients as a number."""
    value = body.get("expiresIn")
    if isinstance(value, str) and value.strip().isdigit() and len(value) < 12:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_EXPIRES_IN_S:
        raise errors.invalid_request(f"expiresIn: {value!r} is not a number of seconds from 1 to {MAX_EXPIRES_IN_S}")
    return value


def signed_url(secret: str, bucket: str, key: str, expires_in_s: int) -> str:
    now = int(time.time())
    claims = {"url": f"{bucket}/{key}", "scope": SCOPE_DOWNLOAD, "iat": now, "exp": now + expires_in_s}
    token = keys.sign(claims, secret)
    return f"/object/sign/{urllib.parse.quote(f'{bucket}/{key}', safe='/')}?token={token}"


# The names (in input order) the caller may see, for a bucket that exists (else no row).
_VISIBLE = """select array(
    select n.name from unnest($2::text[]) with ordinality as n(name, i)
    where exists (select 1 from storage.objects o where o.bucket_id = $1 and o.name = n.name) order by n.i)
  as visible from storage.harness_bucket($1)"""
_SIGNED_BODY = """select o.name, o.metadata ->> 'mimetype' as mimetype, o.metadata ->> 'cacheControl' as cache_control,
    o.metadata ->> 'eTag' as etag, o.updated_at, body.content
  from storage.objects o join harness_internal.object_bodies body on body.sha256 = o.version
  where o.bucket_id = $1 and o.name = $2"""


async def _visible(request: web.Request, claims: Claims, target: str, names: list[str]) -> set[str]:
    async with db_of(request).as_caller(claims, read_only=True) as conn:
        row = await conn.fetchrow(_VISIBLE, target, names)
    if row is None:
        raise errors.no_such_bucket()
    return set(row["visible"])


@route
async def sign(request: web.Request) -> web.Response:
    claims = claims_of(request)
    target = bucket_id(request.match_info["bucket"])
    key = object_key(request.match_info["path"])
    expires_in_s = _expires_in(await read_json(request))
    if key not in await _visible(request, claims, target, [key]):
        raise errors.no_such_key()
    return web.json_response({"signedURL": signed_url(request.app[CONFIG].jwt_secret, target, key, expires_in_s)})


@route
async def sign_many(request: web.Request) -> web.Response:
    """`{"expiresIn", "paths": [...]}` → `[{"error", "path", "signedURL"}]`, one entry per path, in order."""
    claims = claims_of(request)
    target = bucket_id(request.match_info["bucket"])
    body = await read_json(request)
    expires_in_s = _expires_in(body)
    paths = body.get("paths")
    if not isinstance(paths, list) or not 1 <= len(paths) <= 1000 or not all(isinstance(p, str) for p in paths):
        raise errors.invalid_request("paths must be a list of 1 to 1000 object names")
    valid = []
    for path in paths:
        try:
            valid.append(object_key(path))
        except StorageError:
            continue
    visible = await _visible(request, claims, target, valid)
    secret = request.app[CONFIG].jwt_secret
    out = []
    for path in paths:
        if path in visible:
            out.append({"error": None, "path": path, "signedURL": signed_url(secret, target, path, expires_in_s)})
        else:
            out.append({"error": _NOT_ACCESSIBLE, "path": path, "signedURL": None})
    return web.json_response(out)


@route
async def serve_signed(request: web.Request) -> web.StreamResponse:
    """No JWT header: the `token` query parameter is the credential, valid for exactly this bucket/path."""
    token = request.query.get("token")
    if not token:
        raise StorageError(400, "MissingParameter", "Missing Required Parameter token: use the URL from sign")
    try:
        claims = jwt.decode(token, request.app[CONFIG].jwt_secret, algorithms=["HS256"], options={"require": ["exp"]})
    except jwt.ExpiredSignatureError:
        raise errors.invalid_jwt("jwt expired") from None
    except jwt.PyJWTError as exc:
        raise errors.invalid_jwt(f"invalid token: {type(exc).__name__}") from None
    if not download_scoped(claims):
        raise errors.invalid_signature(f"Token is not scoped for {SCOPE_DOWNLOAD}")
    bucket = request.match_info["bucket"]
    key = request.match_info["path"]
    if claims.get("url") != f"{bucket}/{key}":
        raise errors.invalid_signature()
    row = await db_of(request).admin.fetchrow(_SIGNED_BODY, bucket_id(bucket), object_key(key))
    if row is None:
        raise errors.no_such_key()
    return serve_body(request, row)
