"""Signed upload URLs: `POST /object/upload/sign/<bucket>/<path>` mints one, `PUT …?token=` uploads through it.

    POST (the caller's JWT)   the caller's policies are tried now, in a transaction rolled back (storage-api's
                              canUpload: an INSERT, or an upsert with `x-upsert: true`), so a URL is only handed to
                              someone who could upload there themselves
                              → {"url": "/object/upload/sign/<bucket>/<path>?token=…", "token": …}
    PUT  (no JWT: the token)  the token names exactly this bucket/path, carries the owner and whether to upsert; the
                              body is stored with elevated rights (the policies were checked at signing), under the
                              bucket's size and type limits → {"Key": "<bucket>/<path>"}

The token is an HS256 JWT over the project secret: `{owner, url, upsert, scope: "upload", iat, exp}`, as
storage-api signs it. The `scope` keeps a download token from being replayed here and this one from reading.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import asyncpg
import jwt
from aiohttp import web

from harness.model import keys
from harness.refstack.region.state import CONFIG
from harness.refstack.region.storage import errors, upload
from harness.refstack.region.storage.common import (
    bucket_id,
    claims_of,
    db_of,
    object_key,
    owner_id_of,
    owner_of,
    owner_uuid,
    route,
)
from harness.refstack.region.storage.errors import StorageError

UPLOAD_URL_EXPIRES_S = 2 * 3600
"""How long a signed upload URL stays valid: two hours, as Supabase documents for its hosted projects."""
SCOPE_UPLOAD = "upload"
SCOPE_DOWNLOAD = "download"

# storage-api's canUpload: the row the upload would write, tried as the caller and rolled back. The version stays
# null (no body yet); an upsert touches only `name`, so the body bookkeeping never runs.
_TRY_INSERT = """insert into storage.objects (bucket_id, name, owner, owner_id, metadata)
  values ($1, $2, $3, $4, '{}'::jsonb)"""
_TRY_UPSERT = _TRY_INSERT + " on conflict (bucket_id, name) do update set name = excluded.name"
_BUCKET = "select 1 from storage.buckets where id = $1"


class _Tried(Exception):
    """Raised after the trial write, so `as_caller` rolls it back."""


def upload_scoped(claims: dict[str, Any]) -> bool:
    """storage-api's isUploadScopedToken: scope "upload", or a legacy token (no scope) carrying `upsert`."""
    scope = claims.get("scope")
    return scope == SCOPE_UPLOAD or (scope is None and "upsert" in claims)


def download_scoped(claims: dict[str, Any]) -> bool:
    scope = claims.get("scope")
    return scope == SCOPE_DOWNLOAD or (scope is None and "upsert" not in claims)


@route
async def sign_upload(request: web.Request) -> web.Response:
    claims = claims_of(request)
    target = bucket_id(request.match_info["bucket"])
    key = object_key(request.match_info["path"])
    upsert = request.headers.get("x-upsert") == "true"
    if await db_of(request).admin.fetchval(_BUCKET, target) is None:
        raise errors.no_such_bucket()
    owner = owner_of(claims)
    try:
        async with db_of(request).as_caller(claims) as conn:
            await conn.execute(_TRY_UPSERT if upsert else _TRY_INSERT, target, key, owner, owner_id_of(claims))
            raise _Tried
    except _Tried:
        pass
    except asyncpg.ForeignKeyViolationError:
        raise errors.no_such_bucket() from None
    now = int(time.time())
    path = f"{target}/{key}"
    token = keys.sign(
        {"owner": claims.sub, "url": path, "upsert": upsert, "scope": SCOPE_UPLOAD, "iat": now,
         "exp": now + UPLOAD_URL_EXPIRES_S},
        request.app[CONFIG].jwt_secret,
    )  # fmt: skip
    url = f"/object/upload/sign/{urllib.parse.quote(path, safe='/')}?token={token}"
    return web.json_response({"url": url, "token": token})


@route
async def upload_signed(request: web.Request) -> web.Response:
    token = request.query.get("token")
    if not token:
        raise StorageError(400, "MissingParameter", "Missing Required Parameter token: use the url from upload/sign")
    try:
        claims = jwt.decode(token, request.app[CONFIG].jwt_secret, algorithms=["HS256"], options={"require": ["exp"]})
    except jwt.ExpiredSignatureError:
        raise errors.invalid_jwt("jwt expired") from None
    except jwt.PyJWTError as exc:
        raise errors.invalid_jwt(f"invalid token: {type(exc).__name__}") from None
    if not upload_scoped(claims):
        raise errors.invalid_signature(f"Token is not scoped for {SCOPE_UPLOAD}")
    if claims.get("url") != f"{request.match_info['bucket']}/{request.match_info['path']}":
        raise errors.invalid_signature()
    sub = claims.get("owner") if isinstance(claims.get("owner"), str) else None
    stored = await upload.store(request, None, owner_uuid(sub), sub, upsert=claims.get("upsert") is True)
    key = f"{request.match_info['bucket']}/{request.match_info['path']}"
    return web.json_response({"Key": key}, status=stored.status)
