"""The edge: the local CloudFront + Lambda@Edge stand-in in front of the region servers.

    viewer ──► edge (CloudFront-Viewer-Country from the viewer's own request)
                ├── /auth/v1 /rest/v1 /realtime/v1 /storage/v1 /functions/v1 /health, any websocket upgrade
                │       └─► routing.choose_origin(country, path, health) ─► proxy to that region's origin
                ├── /_edge/status          health state, current decisions and primary region (JSON)
                ├── /_edge/admin/primary   DR traffic switch: which region is everyone's primary (admin.py)
                ├── /_edge/admin/hops      load-test frames relayed, per run and second (hops.py)
                └── everything else        the web shell (webshell.py)
    health checker (background task) ── GET <origin>/health every interval ──► health map used by choose_origin

Real CloudFront derives CloudFront-Viewer-Country from the viewer's IP; on loopback every viewer has the same
IP, so the stand-in takes the header from the request. A real deployment never trusts a viewer-sent value
(CloudFront overwrites it), which is why this edge must only ever listen on loopback or a test network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from harness.errors import ConfigError
from harness.model.target_config import Secret

from . import admin, build, hops, webshell
from .health import HealthChecker, stop_task
from .proxy import (
    CONNECT_TIMEOUT_S,
    READ_TIMEOUT_S,
    bad_request,
    has_unsendable_header,
    is_websocket,
    proxy_http,
    proxy_websocket,
)
from .routing import RoutingPolicy, choose_origin

ORIGIN_PREFIXES = ("/auth/v1", "/rest/v1", "/realtime/v1", "/storage/v1", "/functions/v1", "/health")
"""Paths proxied to a region (the Supabase gateway's prefixes, plus the deployment's /health)."""

VIEWER_COUNTRY_HEADER = "CloudFront-Viewer-Country"
STATUS_PATH = "/_edge/status"
STATUS_SAMPLE_COUNTRIES = ("CN", "HK", "SG")
"""Viewers whose current decision `/_edge/status` shows: mainland China, Hong Kong, everyone else."""


@dataclass
class EdgeState:
    origins: Mapping[str, str]
    switch: admin.PrimarySwitch
    """The home routing policy and the one in effect (a DR traffic switch may have replaced it)."""
    checker: HealthChecker
    edge_location: str
    proxy_headers: Mapping[str, str]
    shell_headers: Mapping[str, str]
    shell: webshell.WebShell
    session: aiohttp.ClientSession | None = None
    health_task: asyncio.Task[None] | None = None


STATE = web.AppKey("edge_state", EdgeState)


def is_origin_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in ORIGIN_PREFIXES)


def _validate(
    origins: Mapping[str, str],
    policy: RoutingPolicy,
    interval_s: float,
    failure_threshold: int,
    recovery_threshold: int,
    admin_token: str | Secret | None,
) -> None:
    if admin_token is not None and not (admin_token.reveal() if isinstance(admin_token, Secret) else admin_token):
        raise ConfigError("edge: admin_token is empty; give a token, or None to turn the admin API off")
    for region in (policy.primary_region, policy.secondary_region):
        if region not in origins:
            raise ConfigError(
                f"edge: origins: no URL for region {region!r}; have {sorted(origins)} "
                f"(e.g. {{'ap-southeast-1': 'http://127.0.0.1:54321', 'ap-northeast-1': 'http://127.0.0.1:54322'}})"
            )
    for region, url in origins.items():
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"edge: origins[{region!r}]: {url!r} is not a base URL (e.g. http://127.0.0.1:54321)")
    if not interval_s > 0:
        raise ConfigError(f"edge: health_interval_s: {interval_s!r} is not a positive number of seconds (e.g. 1.0)")
    for name, value in (("failure_threshold", failure_threshold), ("recovery_threshold", recovery_threshold)):
        if value < 1:
            raise ConfigError(f"edge: {name}: {value!r} is not a count of probes ≥ 1 (e.g. 3)")


async def _status(request: web.Request) -> web.Response:
    state = request.app[STATE]
    health = state.checker.health_map()
    return web.json_response(
        {
            "edge_location": state.edge_location,
            **state.switch.as_dict(),
            "origins": {
                region: {"url": url, **state.checker.state[region].as_dict()} for region, url in state.origins.items()
            },
            "decisions": {
                country: choose_origin(country, "/rest/v1/", health, state.switch.policy).as_dict()
                for country in STATUS_SAMPLE_COUNTRIES
            },
            "health_check": {
                "path": state.checker.path,
                "interval_s": state.checker.interval_s,
                "failure_threshold": state.checker.failure_threshold,
                "recovery_threshold": state.checker.recovery_threshold,
            },
        },
        headers={"Cache-Control": "no-store", "x-edge-location": state.edge_location},
    )


async def _handle(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if not request.path.startswith("/_edge/"):
        failure = await request.app[build.BUILD].apply()  # the deployment gate's "bad build" (build.py)
        if failure is not None:
            return failure
    if is_websocket(request) or is_origin_path(request.path):
        if has_unsendable_header(request):
            return bad_request(state.proxy_headers)
        decision = choose_origin(
            request.headers.get(VIEWER_COUNTRY_HEADER), request.path, state.checker.health_map(), state.switch.policy
        )
        assert state.session is not None, "the edge's client session is created on startup"
        origin_url = state.origins[decision.region]
        if is_websocket(request):
            return await proxy_websocket(request, state.session, origin_url, state.proxy_headers)
        return await proxy_http(request, state.session, origin_url, state.proxy_headers)
    if request.path.startswith("/_edge/"):
        # The edge's own API (status, admin) answers in its JSON, for a method or path it does not serve too.
        known = request.path in (STATUS_PATH, admin.PRIMARY_PATH, hops.PATH, build.PATH)
        if known:
            return admin.json_error(405, f"{request.method[:20]} is not served on {request.path}")
        return admin.json_error(404, f"no edge route {request.path[:200]!r}")
    if request.method not in ("GET", "HEAD"):
        # The web shell's behaviour allows GET and HEAD only, like an S3 origin behind CloudFront.
        return web.Response(
            status=405, text="Method Not Allowed", headers={**state.shell_headers, "Allow": "GET, HEAD"}
        )
    return webshell.serve(request, state.shell, state.shell_headers)


async def _startup(app: web.Application) -> None:
    state = app[STATE]
    state.session = aiohttp.ClientSession(
        # One pool for every origin; no connection cap, since each proxied websocket holds one for its lifetime.
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30.0),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S, sock_read=READ_TIMEOUT_S),
        auto_decompress=False,  # bodies pass through byte for byte, Content-Encoding intact
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
    )
    state.health_task = state.checker.start()


async def _cleanup(app: web.Application) -> None:
    state = app[STATE]
    if state.health_task is not None:
        await stop_task(state.health_task)
    if state.session is not None:
        await state.session.close()


def build_app(
    *,
    origins: Mapping[str, str],
    policy: RoutingPolicy | None = None,
    health_interval_s: float = 1.0,
    failure_threshold: int = 3,
    recovery_threshold: int = 2,
    health_path: str = "/health",
    edge_location: str = "SIN-LOCAL",
    csp: str = webshell.DEFAULT_CSP,
    admin_token: str | Secret | None = None,
) -> web.Application:
    """The edge application. `origins` maps region → base URL; the policy's two regions must be among them.
    `admin_token` turns on the admin API (`admin.py`) for callers presenting it as a bearer token."""
    policy = policy or RoutingPolicy()
    _validate(origins, policy, health_interval_s, failure_threshold, recovery_threshold, admin_token)
    switch = admin.PrimarySwitch(policy)
    edge_headers = {"x-edge-location": edge_location, "x-amz-cf-pop": edge_location}
    security = webshell.security_headers(csp)
    state = EdgeState(
        origins=dict(origins),
        switch=switch,
        checker=HealthChecker(
            origins=dict(origins),
            interval_s=health_interval_s,
            failure_threshold=failure_threshold,
            recovery_threshold=recovery_threshold,
            path=health_path,
        ),
        edge_location=edge_location,
        proxy_headers={**edge_headers, **security},
        shell_headers={**edge_headers, **security},
        shell=webshell.build_webshell(),
    )
    # Streams bodies itself, so no aiohttp body-size cap applies.
    app = web.Application(client_max_size=0)
    app[STATE] = state
    app.on_startup.append(_startup)
    app.on_cleanup.append(_cleanup)
    app.router.add_get(STATUS_PATH, _status)
    admin.add_routes(app, switch, admin_token)
    hops.add_routes(app)
    build.add_routes(app)
    app.router.add_route("*", "/{tail:[\\s\\S]*}", _handle)  # newlines too: a path may hold %0A
    return app
