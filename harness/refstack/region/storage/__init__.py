"""Supabase Storage at `/storage/v1` (docs/protocols.md §5): buckets, objects, signed URLs, as storage3 calls them.

    bucket              GET list · POST create                                  buckets.py
    bucket/<id>         GET · PUT · DELETE · POST …/empty                      buckets.py
    object/<b>/<path>   POST upload · PUT overwrite                             upload.py
                        GET download · DELETE one                               objects.py
    object/<b>          DELETE {"prefixes": [...]}                              objects.py
    object/authenticated/<b>/<path> · object/public/<b>/<path> (GET, HEAD)         objects.py
    object/info/<b>/<path> · object/info/authenticated/… · object/info/public/…     objects.py
    object/list/<b>     POST {prefix, limit, offset, sortBy, search}            listing.py
    object/list-v2/<b>  POST {prefix, limit, cursor, with_delimiter, sortBy}    listing_v2.py
    object/move · object/copy   {bucketId, sourceKey, destinationKey, destinationBucket?}   objects.py
    object/sign/<b>/<path>  POST sign · GET serve ?token=  ·  object/sign/<b>   POST batch sign   signing.py
    object/upload/sign/<b>/<path>   POST mint an upload URL · PUT ?token= upload    upload_signed.py
    render/image/…      FeatureNotEnabled (no image transformation)
    anything else       Storage's 404 "Route <METHOD>:<url> not found"

Metadata lives in Supabase's own `storage.buckets` / `storage.objects`; bodies in
`harness_internal.object_bodies`, content-addressed and pointed at by `storage.objects.version`, written in the
same transaction as the row (so a hot standby gets both by streaming replication). Every request runs as the
caller (`Database.as_caller`), so the project's row-level security policies decide who may do what, as with
storage-api; the service role bypasses them. The database side (the body foreign key, the trigger that drops
unreferenced bodies, the bucket lookup storage-api does as superuser) is `postgres/contract_storage.sql`.
Errors are `errors.StorageError` values rendered by `errors.render`.
"""

from __future__ import annotations

from aiohttp import web

from harness.refstack.region.storage import (
    buckets,
    errors,
    listing,
    listing_v2,
    objects,
    signing,
    upload,
    upload_signed,
)

__all__ = ["PREFIX", "setup"]

PREFIX = "/storage/v1"


async def _not_found(request: web.Request) -> web.Response:
    return errors.render(errors.unknown_route(request))


async def _render_image(request: web.Request) -> web.Response:
    """Image transformation is not offered: hosted Storage's answer for a project without the feature."""
    return errors.render(errors.feature_not_enabled())


def setup(app: web.Application) -> None:
    """Register the routes (the database is opened by lifecycle.py; nothing is read at setup time).

    aiohttp tries routes in the order added, so every fixed segment (`list-v2`, `upload/sign`, `info`, …) comes
    before the `{bucket}/{path}` catch-alls, as Storage's router prefers static segments over parameters."""
    router = app.router
    buckets.add_routes(router, PREFIX)
    p = f"{PREFIX}/object"
    obj = "{bucket}/{path:[\\s\\S]+}"  # "." would not match a newline, leaving such paths to a plain 404
    router.add_post(f"{p}/list/{{bucket}}", listing.list_objects)
    router.add_post(f"{p}/list-v2/{{bucket}}", listing_v2.list_objects_v2)
    router.add_post(f"{p}/move", objects.move)
    router.add_post(f"{p}/copy", objects.copy)
    router.add_post(f"{p}/upload/sign/{obj}", upload_signed.sign_upload)
    router.add_put(f"{p}/upload/sign/{obj}", upload_signed.upload_signed)
    router.add_post(f"{p}/sign/{{bucket}}", signing.sign_many)
    router.add_post(f"{p}/sign/{obj}", signing.sign)
    router.add_get(f"{p}/sign/{obj}", signing.serve_signed)
    router.add_get(f"{p}/public/{obj}", objects.download_public)
    router.add_get(f"{p}/authenticated/{obj}", objects.download)
    router.add_get(f"{p}/info/authenticated/{obj}", objects.info_authenticated, allow_head=False)
    router.add_get(f"{p}/info/public/{obj}", objects.info_public, allow_head=False)
    router.add_get(f"{p}/info/{obj}", objects.info, allow_head=False)
    router.add_get(f"{p}/{obj}", objects.download)
    router.add_post(f"{p}/{obj}", upload.upload)
    router.add_put(f"{p}/{obj}", upload.upload)
    router.add_delete(f"{p}/{{bucket}}", objects.delete_many)
    router.add_delete(f"{p}/{obj}", objects.delete_one)
    router.add_get(f"{PREFIX}/render/image/{{kind:public|authenticated|sign}}/{obj}", _render_image)
    router.add_route("*", f"{PREFIX}/{{tail:[\\s\\S]*}}", _not_found)
