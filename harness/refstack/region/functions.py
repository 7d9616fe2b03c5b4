"""Edge Functions at `/functions/v1/<name>` (docs/protocols.md §6): the app's one function, `livekit-token`.

    POST /functions/v1/livekit-token  {"room": "<conversation id>"}  with a user JWT
      → 200 {"token": <LiveKit AccessToken, §7.1>, "url": <LiveKit URL>}
      → 401 {"msg": "Invalid JWT"} missing or bad JWT (the gateway's verify_jwt), 400 bad body,
        403 {"error": …} when the caller is not a member of the conversation, 404 for any other function.

No key-auth here: self-hosted Kong does not key-auth functions (§6).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from aiohttp import web
from livekit import api as livekit_api

from harness.model.keys import TokenError
from harness.refstack.region.auth import verify_token
from harness.refstack.region.state import CONFIG, DB, MEMBERSHIP, bearer_token


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _display_name(request: web.Request, user_id: str, email: Any) -> str:
    profile = request.app[DB].get("profiles", id=user_id)
    name = profile.get("display_name") if profile else None
    return str(name or email or user_id)


async def _livekit_token(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    token = bearer_token(request)
    try:
        claims = verify_token(token or "", config.jwt_secret)
    except TokenError:
        return web.json_response({"code": 401, "msg": "Invalid JWT"}, status=401)
    if claims.role != "authenticated" or claims.sub is None:
        return _error(403, "livekit-token needs a signed-in user's access token, not a project key")
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return _error(400, 'the body must be JSON like {"room": "<conversation id>"}')
    room = body.get("room") if isinstance(body, dict) else None
    if not isinstance(room, str) or not room:
        return _error(400, f'"room" must be a conversation id, e.g. {{"room": "<uuid>"}}; got {json.dumps(room)}')
    if not request.app[MEMBERSHIP].is_member(claims.sub, room):
        return _error(403, f"not a member of conversation {room}")
    grants = livekit_api.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True)
    livekit_token = (
        livekit_api.AccessToken(config.livekit_api_key, config.livekit_api_secret)
        .with_identity(claims.sub)
        .with_name(_display_name(request, claims.sub, claims.raw.get("email")))
        .with_ttl(dt.timedelta(seconds=config.livekit_token_ttl_s))
        .with_grants(grants)
        .to_jwt()
    )
    return web.json_response({"token": livekit_token, "url": config.livekit_url})


async def _unknown(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    return _error(404, f"function {name!r} not found; this reference stack serves only 'livekit-token'")


def setup(app: web.Application) -> None:
    app.router.add_post("/functions/v1/livekit-token", _livekit_token)
    app.router.add_route("*", "/functions/v1/{name}", _unknown)
