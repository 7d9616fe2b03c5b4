"""HTTP entry points of Realtime: the websocket handshake and the REST broadcast API (PROTOCOLS.md §4.1, §4.4)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from harness.model import strict_json
from harness.refstack.region.realtime import authorization, frames, tokens
from harness.refstack.region.realtime.codec import negotiate
from harness.refstack.region.realtime.connection import Connection
from harness.refstack.region.realtime.frames import UserBroadcast
from harness.refstack.region.realtime.hub import Hub
from harness.refstack.region.state import CONFIG, DB, api_key, bearer_token

log = logging.getLogger(__name__)

HUB = web.AppKey("realtime_hub", Hub)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def websocket(request: web.Request) -> web.StreamResponse:
    """`GET /realtime/v1/websocket?apikey=…&vsn=1.0.0|2.0.0`: the token comes from `x-api-key`, then `?apikey=`;
    `vsn` picks the serializer (codec.py), as Phoenix does: absent is 1.0.0, one it does not serve is a 403."""
    hub = request.app[HUB]
    secret = request.app[CONFIG].jwt_secret
    token = request.headers.get("x-api-key") or request.query.get("apikey")
    checked = tokens.check(token, secret)
    if isinstance(checked, tokens.Rejected):
        return _error(401, checked.handshake_message)
    vsn = request.query.get("vsn")
    codec = negotiate(vsn)
    if codec is None:
        # Phoenix answers 403 with no body (Phoenix.Socket.negotiate_serializer logs why): say it in the log.
        log.warning(
            "realtime: the client's requested transport version \"%s\" does not match the server's requirements "
            '"~> 1.0.0" or "~> 2.0.0"',
            (vsn or "")[:32],
        )
        return web.Response(status=403)
    settings = hub.settings
    ws = web.WebSocketResponse(
        heartbeat=None,  # Phoenix clients send their own heartbeats on the `phoenix` topic
        autoping=True,
        compress=False,  # a per-socket deflate context costs ~300 KB; Phoenix does not compress by default
        max_msg_size=settings.max_frame_bytes,
        timeout=settings.close_timeout_s,
    )
    if not ws.can_prepare(request).ok:
        return _error(400, "expected a websocket upgrade (Connection: Upgrade, Upgrade: websocket)")
    await ws.prepare(request)
    assert token is not None
    conn = Connection(hub, request, ws, token, checked, secret, codec)
    hub.connections.add(conn)
    try:
        await conn.run()
    finally:
        conn.teardown()
        hub.connections.discard(conn)
    return ws


def _unauthorized(request: web.Request) -> web.Response | None:
    """Kong's key-auth in front of the Realtime API: an apikey must be present and valid."""
    key = api_key(request)
    if not key:
        return web.json_response({"message": "No API key found in request"}, status=401)
    secret = request.app[CONFIG].jwt_secret
    for token in (key, bearer_token(request)):
        if token is not None and isinstance(tokens.check(token, secret), tokens.Rejected):
            return web.json_response({"message": "Invalid authentication credentials"}, status=401)
    return None


async def _may_send(request: web.Request, topics: set[str]) -> set[str]:
    """The private topics the request's caller (its bearer token, else its apikey) may broadcast to: their
    INSERT policies on realtime.messages decide (authorization.py). Messages to the others are dropped, and the
    request is still accepted (202), as Realtime's broadcast API does."""
    if not topics:
        return set()
    claims = tokens.check(bearer_token(request) or api_key(request), request.app[CONFIG].jwt_secret)
    if isinstance(claims, tokens.Rejected):
        return set()
    allowed: set[str] = set()
    for topic in topics:
        try:
            found = await authorization.permissions(request.app[DB], topic, claims.raw)
        except authorization.Refused as exc:
            log.info("realtime: private broadcast to %r dropped: %s", topic[:128], exc.reason)
            continue
        if found.broadcast_write:
            allowed.add(topic)
    return allowed


async def _json_body(request: web.Request) -> Any:
    """The body as JSON (null when empty), or a JsonBodyError: not JSON, not UTF-8, NaN or Infinity, a lone
    surrogate, or nested deeper than a frame may carry (no socket could take it on)."""
    return strict_json.loads(await request.read() or b"null", max_depth=frames.MAX_DEPTH)


async def broadcast_bulk(request: web.Request) -> web.Response:
    """`POST /realtime/v1/api/broadcast` with `{"messages":[{"topic","event","payload","private"?}]}` → 202."""
    if (denied := _unauthorized(request)) is not None:
        return denied
    try:
        body = await _json_body(request)
    except strict_json.JsonBodyError as exc:
        return _error(400, f"body must be JSON: {exc.message}")
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return _error(400, 'body must be {"messages":[{"topic":"<name>","event":"<event>","payload":{…}}]}')
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            return _error(400, f"messages[{index}] must be an object with topic, event and payload")
        topic, event = message.get("topic"), message.get("event")
        if not isinstance(topic, str) or not topic or not isinstance(event, str) or not event:
            return _error(400, f"messages[{index}]: topic and event must be non-empty strings")
    hub = request.app[HUB]
    allowed = await _may_send(request, {m["topic"] for m in messages if m.get("private") is True})
    for message in messages:
        private = message.get("private") is True
        if private and message["topic"] not in allowed:
            continue
        payload = {"type": "broadcast", "event": message["event"], "payload": message.get("payload", {})}
        hub.broadcast((private, f"realtime:{message['topic']}"), payload)
    return web.json_response({}, status=202)


async def broadcast_one(request: web.Request) -> web.Response:
    """`POST /realtime/v1/api/broadcast/<topic>/events/<event>[?private=true]` (AsyncRealtimeChannel.http_send)."""
    if (denied := _unauthorized(request)) is not None:
        return denied
    event = request.match_info["event"]
    if request.content_type == "application/octet-stream":
        # Bytes reach vsn 2.0.0 sockets as a binary user broadcast; vsn 1.0.0 ones cannot carry them (Realtime's
        # MessageDispatcher skips them there too).
        message = UserBroadcast(event, await request.read(), json=False)
    else:
        try:
            body = await _json_body(request)
        except strict_json.JsonBodyError as exc:
            return _error(400, f"body must be JSON (or application/octet-stream): {exc.message}")
        message = UserBroadcast(event, frames.dumps(body).encode(), json=True)  # SingleBroadcast's JSON form
    private, topic = request.query.get("private") == "true", request.match_info["topic"]
    if private and topic not in await _may_send(request, {topic}):
        return web.json_response({}, status=202)
    request.app[HUB].user_broadcast((private, f"realtime:{topic}"), message)
    return web.json_response({}, status=202)
