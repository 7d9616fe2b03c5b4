"""The `/rtc` signalling websocket and `/rtc/validate` (docs/protocols.md §7.3), without WebRTC.

    client ──SignalRequest──► reader loop ── ping_req ─► pong_resp ─┐
                                   │        add_track ──► RoomRegistry.publish_track (track_published)
                                   │        leave ──► RoomRegistry.leave
    RoomRegistry (updates, leave) ─┴──────────────────────────────────► WebSocketSink queue ──► client

One writer task per connection drains a queue, so a slow client never blocks the rest of its room. A binary frame
from the client switches replies to protobuf, a text frame to protojson; the first frame (the JoinResponse) is
always binary because it is queued before anything is read.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import WSMsgType, web
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from harness.refstack.livekit import datachannel
from harness.refstack.livekit.auth import PERMISSION_DENIED, AuthError, Grants
from harness.refstack.livekit.rooms import RoomRegistry

log = logging.getLogger(__name__)

WS_PING_INTERVAL_S = 10.0
"""Websocket-level ping period, as livekit-server; a client that misses the pong for half of it is dropped."""

OUTBOX_LIMIT = 1024
"""Frames queued for one participant before it is disconnected as too slow to keep up."""

CLOSE_WAIT_S = 15.0
"""How long a handler waits for its writer to flush and close the socket."""

ALLOW_ORIGIN = {"Access-Control-Allow-Origin": "*"}


def admit(grants: Grants | None) -> str:
    """The room a token may join (only from `video.room`); AuthError as livekit-server answers otherwise."""
    if grants is None or not grants.video or not grants.allows("roomJoin"):
        raise AuthError(401, PERMISSION_DENIED)
    if not grants.room:
        raise AuthError(400, "no room name")
    if not grants.identity:
        raise AuthError(400, "identity cannot be empty")
    return grants.room


def now_ms() -> int:
    return int(time.time() * 1000)


class WebSocketSink:
    """A participant's outgoing side: `send` and `close` queue; one task writes the frames in order."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws
        self.json_mode = False
        self._queue: asyncio.Queue[bytes | str | None] = asyncio.Queue()
        self._closing = False
        self._task = asyncio.create_task(self._drain())

    def send(self, response: proto_rtc.SignalResponse) -> None:
        if self._closing:
            return
        if self._queue.qsize() >= OUTBOX_LIMIT:
            log.warning("dropping a participant whose signal queue reached %d frames", OUTBOX_LIMIT)
            self.close()
            return
        if self.json_mode:
            self._queue.put_nowait(json_format.MessageToJson(response, indent=None))
        else:
            self._queue.put_nowait(response.SerializeToString())

    def send_data(self, packet: proto_models.DataPacket) -> None:
        """A server-sent DataPacket, as datachannel.py frames it (always binary: see there)."""
        if not self._closing:
            self._queue.put_nowait(datachannel.frame(packet))

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._queue.put_nowait(None)

    async def wait_closed(self) -> None:
        self.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), CLOSE_WAIT_S)
        except TimeoutError:
            self._task.cancel()

    async def _drain(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if item is None:
                    await self._ws.close(code=1000)
                    return
                if isinstance(item, bytes):
                    await self._ws.send_bytes(item)
                else:
                    await self._ws.send_str(item)
            except (ConnectionError, RuntimeError):
                # The peer went away; the reader loop notices too and removes the participant.
                return


def _decode(msg_type: WSMsgType, data: bytes | str) -> proto_rtc.SignalRequest | None:
    request = proto_rtc.SignalRequest()
    try:
        if msg_type == WSMsgType.BINARY:
            assert isinstance(data, bytes)
            request.ParseFromString(data)
        else:
            assert isinstance(data, str)
            json_format.Parse(data, request, ignore_unknown_fields=True)
    except (DecodeError, json_format.ParseError):
        # The signal protocol has no error reply; livekit-server logs and carries on.
        log.debug("ignoring an undecodable signal request")
        return None
    return request


async def serve_rtc(request: web.Request, rooms: RoomRegistry, grants: Grants | None) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return web.Response(status=404, text="404 page not found")
    room_name = admit(grants)
    assert grants is not None
    ws = web.WebSocketResponse(heartbeat=WS_PING_INTERVAL_S)
    await ws.prepare(request)
    sink = WebSocketSink(ws)
    try:
        participant = rooms.join(room_name, grants, sink)
    except Exception:
        await sink.wait_closed()  # no writer task left behind; aiohttp logs the error
        raise
    sink.send(proto_rtc.SignalResponse(join=rooms.join_response(participant)))
    try:
        async for msg in ws:
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                continue
            sink.json_mode = msg.type == WSMsgType.TEXT
            signal = _decode(msg.type, msg.data)
            kind = signal.WhichOneof("message") if signal is not None else None
            if signal is None or kind is None:
                continue
            if kind == "ping_req":
                pong = proto_rtc.Pong(last_ping_timestamp=signal.ping_req.timestamp, timestamp=now_ms())
                sink.send(proto_rtc.SignalResponse(pong_resp=pong))
            elif kind == "ping":
                sink.send(proto_rtc.SignalResponse(pong=now_ms()))
            elif kind == "add_track":
                rooms.publish_track(participant, signal.add_track)
            elif kind == "leave":
                rooms.leave(participant, proto_models.DisconnectReason.CLIENT_INITIATED, notify_self=False)
                break
            # offer, trickle, add_track …: there is no media plane to act on them.
    finally:
        # The socket closed (or the client left) before ICE ever connected: close the participant at once.
        rooms.leave(participant, proto_models.DisconnectReason.SIGNAL_CLOSE, notify_self=False)
        await sink.wait_closed()
    return ws


async def serve_validate(grants: Grants | None) -> web.Response:
    admit(grants)
    return web.Response(text="success", headers=ALLOW_ORIGIN)
