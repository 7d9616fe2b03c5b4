"""Supabase Storage at `/storage/v1` (docs/protocols.md §5): buckets, objects, signed URLs, as storage3 calls them.

    bucket              GET list · POST create                                  buckets.py
    bucket/<id>         GET · PUT · DELETE · POST …/empty                      buckets.py
    object/<b>/<path>   POST upload · PUT overwrite                             upload.py
                        GET download · DELETE one                               objects.py
    object/<b>          DELETE {"prefixes": [...]}                              objects.py
    object/authenticated/<b>/<path> · object/public/<b>/<path> · object/info/<b>/<path>
    object/list/<b>     POST {prefix, limit, offset, sortBy, search}            objects.py
    object/move · object/copy                                                   objects.py
    object/sign/<b>/<path>  POST sign · GET serve ?token=  ·  object/sign/<b>   POST batch sign   signing.py

Who may do what is `access.can_access` (objects) and the service-role check in `buckets.py` (buckets). Errors are
`errors.StorageError` values rendered by `errors.render`. Object metadata lives in `storage_objects` and
replicates through the change log; bodies are content-addressed blobs (`blobs.py`). For the replication engine:
`blob_path`, `store_blob_bytes` and the optional `app[BLOB_FETCHER]` hook.
"""

from __future__ import annotations

from aiohttp import web

from harness.refstack.region.state import CONFIG, DB
from harness.refstack.region.storage import buckets, errors, objects, signing, upload
from harness.refstack.region.storage.access import BucketInfo, can_access
from harness.refstack.region.storage.blobs import (
    BLOB_FETCHER,
    BLOBS,
    BlobFetcher,
    BlobStore,
    blob_path,
    store_blob_bytes,
)

__all__ = [
    "BLOBS",
    "BLOB_FETCHER",
    "PREFIX",
    "BlobFetcher",
    "BucketInfo",
    "blob_path",
    "can_access",
    "setup",
    "store_blob_bytes",
]

PREFIX = "/storage/v1"


async def _not_found(request: web.Request) -> web.Response:
    return errors.render(errors.route_not_found(request.method, request.path))


def setup(app: web.Application) -> None:
    """Register the routes, open the blob store (a temp dir when memory-only) and create the default bucket."""
    store = BlobStore.for_config(app[CONFIG])
    app[BLOBS] = store
    buckets.ensure_default_bucket(app[DB])

    async def close_store(_app: web.Application) -> None:
        store.close()

    app.on_cleanup.append(close_store)

    router = app.router
    buckets.add_routes(router, PREFIX)
    p = f"{PREFIX}/object"
    obj = "{bucket}/{path:[\\s\\S]+}"  # "." would not match a newline, leaving such paths to a plain 404
    router.add_post(f"{p}/list/{{bucket}}", objects.list_objects)
    router.add_post(f"{p}/move", objects.move)
    router.add_post(f"{p}/copy", objects.copy)
    router.add_post(f"{p}/sign/{{bucket}}", signing.sign_many)
    router.add_post(f"{p}/sign/{obj}", signing.sign)
    router.add_get(f"{p}/sign/{obj}", signing.serve_signed)
    router.add_get(f"{p}/public/{obj}", objects.download_public)
    router.add_get(f"{p}/authenticated/{obj}", objects.download)
    router.add_get(f"{p}/info/authenticated/{obj}", objects.info)
    router.add_get(f"{p}/info/{obj}", objects.info)
    router.add_get(f"{p}/{obj}", objects.download)
    router.add_post(f"{p}/{obj}", upload.upload)
    router.add_put(f"{p}/{obj}", upload.upload)
    router.add_delete(f"{p}/{{bucket}}", objects.delete_many)
    router.add_delete(f"{p}/{obj}", objects.delete_one)
    router.add_route("*", f"{PREFIX}/{{tail:[\\s\\S]*}}", _not_found)
