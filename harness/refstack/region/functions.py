"""Edge Functions at `/functions/v1/<name>` (docs/protocols.md §6): the app's one function, `livekit-token`.

    POST /functions/v1/livekit-token  {"room": "<conversation id>"}  with a user JWT
      → 200 {"token": <LiveKit AccessToken, §7.1>, "url": <LiveKit URL>}
      → 401 {"msg": "Invalid JWT"} missing or bad JWT (the gateway's verify_jwt), 400 bad body,
        403 {"error": …} when the caller is not a member of the conversation, 404 for any other function.

No key-auth here: self-hosted Kong does not key-auth functions (§6). Whether the caller is a member, and the
display name LiveKit shows, are one read-only query run as the caller (their role and claims, as PostgREST runs
it), so the migration's `is_member` and row-level security decide, on the primary and on a read replica alike.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

from aiohttp import web
from livekit import api as livekit_api

from harness.model import strict_json
from harness.model.keys import Claims, TokenError
from harness.refstack.region.auth_input import read_bounded
from harness.refstack.region.state import CONFIG, DB, bearer_token
from harness.refstack.region.token_cache import verify_token

MAX_BODY_BYTES = 64 * 1024
"""The function's body is `{"room": "<uuid>"}`; anything far larger is refused before it is read."""
_MEMBERSHIP_AND_NAME = """
select public.is_member($1::uuid) as is_member,
       (select p.display_name from public.profiles p where p.id = auth.uid()) as display_name
"""


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _member_display_name(request: web.Request, claims: Claims, room: str) -> str | None:
    """The caller's display name when they are a member of conversation `room`, else None."""
    try:
        conversation = uuid.UUID(room)
    except ValueError:
        return None  # not a conversation id, so not a conversation the caller belongs to
    async with request.app[DB].as_caller(claims, read_only=True) as conn:
        row = await conn.fetchrow(_MEMBERSHIP_AND_NAME, conversation)
    if row is None or not row["is_member"]:
        return None
    return str(row["display_name"] or claims.raw.get("email") or claims.sub)


async def _livekit_token(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    token = bearer_token(request)
    try:
        claims = verify_token(token or "", config.jwt_secret)
    except TokenError:
        return web.json_response({"code": 401, "msg": "Invalid JWT"}, status=401)
    if claims.role != "authenticated" or claims.sub is None or not _is_uuid(claims.sub):
        return _error(403, "livekit-token needs a signed-in user's access token, not a project key")
    raw = await read_bounded(request, MAX_BODY_BYTES)
    if raw is None:
        return _error(
            413, f'the body must be JSON like {{"room": "<conversation id>"}}, at most {MAX_BODY_BYTES} bytes'
        )
    try:
        body = strict_json.loads(raw)
    except strict_json.JsonBodyError as exc:
        return _error(400, f'the body must be JSON like {{"room": "<conversation id>"}}: {exc.message}')
    room = body.get("room") if isinstance(body, dict) else None
    if not isinstance(room, str) or not room:
        return _error(400, f'"room" must be a conversation id, e.g. {{"room": "<uuid>"}}; got {json.dumps(room)}')
    display_name = await _member_display_name(request, claims, room)
    if display_name is None:
        return _error(403, f"not a member of conversation {room}")
    grants = livekit_api.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True)
    livekit_token = (
        livekit_api.AccessToken(config.livekit_api_key, config.livekit_api_secret)
        .with_identity(claims.sub)
        .with_name(display_name)
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
