"""The edge's admin API: the DR drill's traffic switch, which region is everyone's primary.

    POST /_edge/admin/primary {"region": "ap-northeast-1"}   Authorization: Bearer <admin token>
        └─► PrimarySwitch.switch(R) ─► routing.switched_policy(home, R) ─► used by every later routing decision
    GET  /_edge/admin/primary                                  the current primary (same auth)

The configured `RoutingPolicy` stays the "home" policy: switching to its primary restores it exactly; switching to
its secondary sends every viewer there, with the home primary as the health-based failover target. The health
checker keeps running underneath, so traffic returns to the region switched away from only while the chosen
primary is unhealthy. Without an admin token the routes answer 404 (the API is off); a missing or wrong token 401.
Open websockets stay where they are: a switch changes where new requests and upgrades go.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field

from aiohttp import web

from harness.model import strict_json
from harness.model.target_config import Secret

from .routing import RoutingPolicy, switched_policy

PRIMARY_PATH = "/_edge/admin/primary"
NO_STORE = {"Cache-Control": "no-store"}
CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass
class PrimarySwitch:
    """The home policy, the one in effect, and when the current primary took effect (None: home since start)."""

    home: RoutingPolicy
    policy: RoutingPolicy = field(init=False)
    switched_at_unix_s: float | None = None

    def __post_init__(self) -> None:
        self.policy = self.home

    @property
    def primary_region(self) -> str:
        return self.policy.primary_region

    def switch(self, region: str) -> bool:
        """Make `region` everyone's primary; False when it already is. ValueError for a region not routed to."""
        policy = switched_policy(self.home, region)
        if policy == self.policy:
            return False
        self.policy = policy
        self.switched_at_unix_s = time.time()
        return True

    def as_dict(self) -> dict[str, object]:
        return {
            "primary_region": self.primary_region,
            "home_primary_region": self.home.primary_region,
            "switched_at_unix_s": self.switched_at_unix_s,
        }


@dataclass
class Admin:
    switch: PrimarySwitch
    token: Secret | None


ADMIN = web.AppKey("edge_admin", Admin)


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"message": message}, status=status, headers={**NO_STORE, **(headers or {})})


def refusal_of(request: web.Request) -> web.Response | None:
    """404 when the API is off, 401 without the right bearer token; None when the caller may go on."""
    token = request.app[ADMIN].token
    if token is None:
        return json_error(404, "the edge admin API is off: the edge was started without an admin token")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return json_error(401, "missing bearer token: send Authorization: Bearer <admin token>", CHALLENGE)
    # surrogateescape: header bytes that are not UTF-8 arrive as lone surrogates; they compare (unequal) as bytes.
    if not hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token.reveal().encode()):
        return json_error(401, "invalid admin token", CHALLENGE)
    return None


async def get_primary(request: web.Request) -> web.Response:
    refusal = refusal_of(request)
    if refusal is not None:
        return refusal
    return web.json_response(request.app[ADMIN].switch.as_dict(), headers=NO_STORE)


async def set_primary(request: web.Request) -> web.Response:
    refusal = refusal_of(request)
    if refusal is not None:
        return refusal
    switch = request.app[ADMIN].switch
    valid = ", ".join(switch.home.regions)
    try:
        body = strict_json.loads(await request.read())
    except strict_json.JsonBodyError as exc:
        return json_error(400, f'the body is not JSON ({exc.message}); expected {{"region": R}} with R one of: {valid}')
    region = body.get("region") if isinstance(body, dict) else None
    if not isinstance(region, str):
        return json_error(400, f'expected a JSON object {{"region": R}} with R one of: {valid}')
    try:
        changed = switch.switch(region)
    except ValueError:
        return json_error(400, f"unknown region {region!r}; valid regions: {valid}")
    return web.json_response(
        {
            "primary_region": switch.primary_region,
            "changed": changed,
            "switched_at_unix_s": switch.switched_at_unix_s,
        },
        headers=NO_STORE,
    )


def add_routes(app: web.Application, switch: PrimarySwitch, token: str | Secret | None) -> None:
    app[ADMIN] = Admin(switch, Secret(token) if isinstance(token, str) else token)
    app.router.add_get(PRIMARY_PATH, get_primary)
    app.router.add_post(PRIMARY_PATH, set_primary)
