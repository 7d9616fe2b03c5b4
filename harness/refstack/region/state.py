"""What every route module of a region server shares: the app keys, and reading the caller's credentials."""

from __future__ import annotations

from aiohttp import web

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


def api_key(request: web.Request) -> str | None:
    """The project key, from the `apikey` header (any case) or the `?apikey=` query parameter (Kong key-auth)."""
    return request.headers.get("apikey") or request.query.get("apikey")
