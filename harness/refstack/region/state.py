"""What every route module of a region server shares: the app keys, and reading the caller's credentials."""

from __future__ import annotations

from aiohttp import web

from harness.refstack.region.config import RegionConfig
from harness.refstack.region.db import Database
from harness.refstack.region.membership import Membership

CONFIG = web.AppKey("config", RegionConfig)
DB = web.AppKey("db", Database)
MEMBERSHIP = web.AppKey("membership", Membership)
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
