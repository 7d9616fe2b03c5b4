"""The LiveKit stand-in as an aiohttp application: health, Twirp RoomService, `/rtc` and `/rtc/validate`.

    GET  /                                   "OK"
    POST /twirp/livekit.RoomService/<Method> twirp.serve   (protobuf or JSON)
    GET  /rtc                                rtc.serve_rtc  (websocket; 404 without an upgrade)
    GET  /rtc/validate                       rtc.serve_validate

Like livekit-server, a bad token is refused before any handler (401, plain text, rendered by `_auth_errors`); a
request without a token reaches its handler with no grants.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from harness.model import keys
from harness.refstack.livekit import rtc, twirp
from harness.refstack.livekit.auth import AuthError, Grants, authenticate
from harness.refstack.livekit.rooms import RoomRegistry


@dataclass(frozen=True)
class LiveKitConfig:
    api_key: str
    api_secret: str
    region: str
    join_timeout_s: float
    """A participant not ACTIVE this long after joining is removed (livekit-server: 60 s). Nobody reaches ACTIVE
    here (no WebRTC), so every `/rtc` participant is removed after it."""


CONFIG = web.AppKey("livekit_config", LiveKitConfig)
ROOMS = web.AppKey("livekit_rooms", RoomRegistry)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _auth_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render AuthError (raised by token checks anywhere below) as livekit-server does: status + plain text."""
    try:
        return await handler(request)
    except AuthError as err:
        headers = rtc.ALLOW_ORIGIN if request.path == "/rtc/validate" else None
        return web.Response(status=err.status, text=err.message, headers=headers)


def _grants(request: web.Request) -> Grants | None:
    config = request.app[CONFIG]
    return authenticate(request.headers, request.query, api_key=config.api_key, api_secret=config.api_secret)


async def _health(_request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def _twirp(request: web.Request) -> web.Response:
    return await twirp.serve(request, request.app[ROOMS], _grants(request))


async def _rtc(request: web.Request) -> web.StreamResponse:
    return await rtc.serve_rtc(request, request.app[ROOMS], _grants(request))


async def _validate(request: web.Request) -> web.Response:
    return await rtc.serve_validate(_grants(request))


async def _shutdown(app: web.Application) -> None:
    app[ROOMS].close_all()


def build_app(
    *,
    api_key: str = keys.LIVEKIT_API_KEY,
    api_secret: str = keys.LIVEKIT_API_SECRET,
    region: str = "ap-southeast-1",
    join_timeout_s: float = 60.0,
) -> web.Application:
    """The stand-in's application; `region` is reported in ParticipantInfo and ServerInfo."""
    app = web.Application(middlewares=[_auth_errors])
    app[CONFIG] = LiveKitConfig(api_key=api_key, api_secret=api_secret, region=region, join_timeout_s=join_timeout_s)
    app[ROOMS] = RoomRegistry(region=region, join_timeout_s=join_timeout_s)
    app.router.add_get("/", _health)
    app.router.add_route("*", r"/twirp/{route:[\s\S]*}", _twirp)  # [\s\S]: a decoded %0A is still Twirp's bad_route
    app.router.add_get("/rtc", _rtc)
    app.router.add_get("/rtc/validate", _validate)
    app.on_shutdown.append(_shutdown)
    return app
