"""Signed URLs: `POST /object/sign/<bucket>/<path>` (and the batch form) mint them, `GET …?token=` serves them.

The token is an HS256 JWT over the project secret with claims `{"url": "<bucket>/<path>", "iat", "exp"}`, as
Supabase Storage signs it. It names one object, so it cannot be replayed for another path, and it carries no
`role`, so it is useless as a bearer token. The returned `signedURL` is relative to the storage root
(`/object/sign/…?token=…`); storage3 joins it onto `…/storage/v1/`.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import jwt
from aiohttp import web

from harness.model import keys
from harness.model.keys import Claims
from harness.refstack.region.state import CONFIG, MEMBERSHIP
from harness.refstack.region.storage import errors
from harness.refstack.region.storage.access import BucketInfo, can_access
from harness.refstack.region.storage.common import (
    claims_of,
    db_of,
    get_bucket,
    get_object,
    object_key,
    read_json,
    route,
)
from harness.refstack.region.storage.errors import StorageError
from harness.refstack.region.storage.objects import serve_object

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


def signed_url(secret: str, bucket_id: str, key: str, expires_in_s: int) -> str:
    now = int(time.time())
    token = keys.sign({"url": f"{bucket_id}/{key}", "iat": now, "exp": now + expires_in_s}, secret)
    return f"/object/sign/{urllib.parse.quote(f'{bucket_id}/{key}', safe='/')}?token={token}"


def _sign_one(request: web.Request, claims: Claims, bucket: BucketInfo, key: str, expires_in_s: int) -> str:
    row = get_object(db_of(request), bucket.id, key)
    if row is None or not can_access(claims, bucket, key, "read", request.app[MEMBERSHIP], row.get("owner")):
        raise errors.no_such_key()
    return signed_url(request.app[CONFIG].jwt_secret, bucket.id, key, expires_in_s)


@route
async def sign(request: web.Request) -> web.Response:
    claims = claims_of(request)
    bucket = get_bucket(db_of(request), request.match_info["bucket"])
    key = object_key(request.match_info["path"])
    expires_in_s = _expires_in(await read_json(request))
    return web.json_response({"signedURL": _sign_one(request, claims, bucket, key, expires_in_s)})


@route
async def sign_many(request: web.Request) -> web.Response:
    """`{"expiresIn", "paths": [...]}` → `[{"error", "path", "signedURL"}]`, one entry per path, in order."""
    claims = claims_of(request)
    bucket = get_bucket(db_of(request), request.match_info["bucket"])
    body = await read_json(request)
    expires_in_s = _expires_in(body)
    paths = body.get("paths")
    if not isinstance(paths, list) or not 1 <= len(paths) <= 1000 or not all(isinstance(p, str) for p in paths):
        raise errors.invalid_request("paths must be a list of 1 to 1000 object names")
    out = []
    for path in paths:
        try:
            url: str | None = _sign_one(request, claims, bucket, object_key(path), expires_in_s)
            error = None
        except StorageError:
            url, error = None, _NOT_ACCESSIBLE
        out.append({"error": error, "path": path, "signedURL": url})
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
    bucket_id = request.match_info["bucket"]
    key = request.match_info["path"]
    if claims.get("url") != f"{bucket_id}/{key}":
        raise errors.invalid_signature()
    row = get_object(db_of(request), bucket_id, object_key(key))
    if row is None:
        raise errors.no_such_key()
    return await serve_object(request, row)
