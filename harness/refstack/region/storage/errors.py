"""Storage API errors as values, rendered in one place (docs/protocols.md §5.2).

Body: `{"statusCode": "<internal status as a string>", "code", "error", "message"}`. The HTTP status is 400 for
every internal status but 500 (Supabase Storage's quirk: the real code lives only in `statusCode`); an error
may override that (`http_status`), which bucket writes the policies refuse do (403), as the real service's role
checks do. `from_postgres` turns a PostgreSQL error (row-level security, unique violation, read-only standby,
bad data, busy database) into the Storage error storage-api would give.
"""

from __future__ import annotations

import asyncpg
from aiohttp import web


class StorageError(Exception):
    """One Storage API error. `status` is the internal status (the `statusCode` string); `error` the old label."""

    def __init__(
        self, status: int, code: str, message: str, *, error: str | None = None, http_status: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.error = error or code
        self.message = message
        self.http_status = http_status

    def body(self) -> dict[str, str]:
        return {"statusCode": str(self.status), "code": self.code, "error": self.error, "message": self.message}


def render(err: StorageError) -> web.Response:
    """The one place a StorageError becomes an HTTP response."""
    status = err.http_status or (500 if err.status == 500 else 400)
    return web.json_response(err.body(), status=status)


# -- the errors the reference stack raises, with the real service's codes, labels and messages ----------------
def no_such_bucket() -> StorageError:
    return StorageError(404, "NoSuchBucket", "Bucket not found", error="Bucket not found")


def no_such_key() -> StorageError:
    return StorageError(404, "NoSuchKey", "Object not found", error="not_found")


def key_already_exists() -> StorageError:
    return StorageError(409, "KeyAlreadyExists", "The resource already exists", error="Duplicate")


def bucket_already_exists() -> StorageError:
    return StorageError(409, "BucketAlreadyExists", "The resource already exists", error="Duplicate")


def bucket_not_empty() -> StorageError:
    return StorageError(409, "ResourceNotEmpty", "The bucket you tried to delete is not empty")


def access_denied(message: str) -> StorageError:
    """A rejected or missing JWT, or a write the access rules refuse: statusCode "403", HTTP 400."""
    return StorageError(403, "AccessDenied", message, error="Unauthorized")


def rls_violation() -> StorageError:
    return access_denied("new row violates row-level security policy")


def bucket_access_denied(message: str) -> StorageError:
    """A bucket write the caller's policies refuse: AccessDenied with HTTP 403, like storage-api's role checks."""
    return StorageError(403, "AccessDenied", message, error="Unauthorized", http_status=403)


def entity_too_large() -> StorageError:
    """storage-api's wording exactly (it names no number): over the bucket's or the global file size limit."""
    message = "The object exceeded the maximum allowed size"
    return StorageError(413, "EntityTooLarge", message, error="Payload too large")


def invalid_mime_type(mime_type: str) -> StorageError:
    """`mime_type` as the upload sent it (parameters included), as storage-api's validateMimeType reports it."""
    return StorageError(415, "InvalidMimeType", f"mime type {mime_type} is not supported", error="invalid_mime_type")


def feature_not_enabled() -> StorageError:
    """Image transformation (`/render/image/…`): hosted Storage's answer for a project without the feature."""
    return StorageError(
        403, "FeatureNotEnabled", "feature not enabled for this tenant", error="FeatureNotEnabled", http_status=403
    )


def invalid_parameter(name: str) -> StorageError:
    return StorageError(400, "InvalidParameter", f"Invalid Parameter {name}")


def invalid_key(key: str) -> StorageError:
    return StorageError(400, "InvalidKey", f"Invalid key: {key}")


def invalid_bucket_name(name: str) -> StorageError:
    return StorageError(400, "InvalidBucketName", f"Bucket name invalid: {name!r}", error="Invalid Input")


def invalid_request(message: str) -> StorageError:
    return StorageError(400, "InvalidRequest", message)


def invalid_jwt(message: str) -> StorageError:
    return StorageError(400, "InvalidJWT", message)


def invalid_signature(message: str = "The url do not match the signature") -> StorageError:
    return StorageError(400, "InvalidSignature", message)


def database_read_only() -> StorageError:
    return StorageError(503, "DatabaseReadOnly", "The database is currently in read-only mode. Please try again later.")


def slow_down(message: str) -> StorageError:
    """The database is busy (a statement timeout, a deadlock, no free connection): try again, as storage-api's 429."""
    return StorageError(429, "SlowDown", message, error="slow_down", http_status=429)


def route_not_found(method: str, url: str) -> StorageError:
    """storage-api's not-found handler: `url` is the request URL as Storage sees it behind the gateway (the
    `/storage/v1` prefix stripped, the query string kept). A real 404, never a resource's own error."""
    return StorageError(404, "InvalidRequest", f"Route {method}:{url} not found", error="Not Found", http_status=404)


def unknown_route(request: web.Request) -> StorageError:
    """`route_not_found` for `request` (its URL relative to `/storage/v1`, as storage-api sees it, bounded)."""
    url = request.raw_path.removeprefix("/storage/v1") or "/"
    return route_not_found(request.method[:20], url[:400])


# -- PostgreSQL's answers, in Storage's words -----------------------------------------------------------------
_RETRY_LATER = frozenset({"57014", "40001", "40P01", "55P03", "53300", "53400"})
"""Statement timeout, serialization failure, deadlock, lock not available, too many connections: transient."""


def from_postgres(exc: asyncpg.PostgresError) -> StorageError:
    """The Storage error for a database error the route did not handle itself (those know their context)."""
    state = exc.sqlstate or ""
    if state == "42501":  # row-level security refused the row, or the role lacks the privilege
        return rls_violation()
    if state == "23505":
        return key_already_exists()
    if state == "25006":  # a hot standby: writes go to the primary (forwarding.py)
        return database_read_only()
    if state.startswith("22"):  # data exceptions: a value Postgres cannot take (e.g. a policy's cast of a name)
        return invalid_request(str(exc))
    if state in _RETRY_LATER:
        return slow_down(f"The database is busy, try again: {exc}")
    return StorageError(500, "DatabaseError", str(exc), error="internal")
