"""What every route module of a region server shares: the app keys, and reading the caller's credentials."""

from __future__ import annotations

from aiohttp import web

from harness.model import keys
from harness.refstack.postgres.cluster import Cluster
from harness.refstack.region.config import RegionConfig
from harness.refstack.region.database import Database

CONFIG = web.AppKey("config", RegionConfig)
CLUSTER = web.AppKey("cluster", Cluster)
DB = web.AppKey("db", Database)
"""Set by lifecycle.start (on_startup, before every module's own start-up hooks run)."""
STARTED_AT = web.AppKey("started_at", float)


def bearer_token(request: web.Request) -> str | None:
    """The token of `Authorization: Bearer <token>` (scheme case-insensitive), or None when absent/other scheme."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_service(request: web.Request) -> None:
    """403 (JSON) unless the bearer token is a valid service-role key: the replication and admin routes."""
    try:
        claims = keys.verify(bearer_token(request) or "", request.app[CONFIG].jwt_secret)
    except keys.TokenError:
        claims = None
    if claims is None or not claims.is_service:
        raise web.HTTPForbidden(
            text='{"message":"replication and admin routes need the service-role key"}',
            content_type="application/json",
        )


def api_key(request: web.Request) -> str | None:
    """The project key, from the `apikey` header (any case) or the `?apikey=` query parameter (Kong key-auth)."""
    return request.headers.get("apikey") or request.query.get("apikey")
