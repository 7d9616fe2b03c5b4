"""Shared helpers for the LiveKit stand-in tests: tokens, `/rtc` connections and frame reading with deadlines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import jwt
import websocket
from livekit import api
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from harness.model import keys
from harness.procs.serving import BackgroundServer

KEY = keys.LIVEKIT_API_KEY
SECRET = keys.LIVEKIT_API_SECRET
RECV_TIMEOUT_S = 5.0
T = TypeVar("T")


def join_token(identity: str = "alice", room: str = "r1", **grants: Any) -> str:
    """A participant token minted by livekit-api, as the app's `livekit-token` function would."""
    token = api.AccessToken(KEY, SECRET).with_identity(identity)
    return token.with_grants(api.VideoGrants(room_join=True, room=room, **grants)).to_jwt()


def raw_token(claims: dict[str, Any], secret: str = SECRET) -> str:
    """A hand-made HS256 token, for claims livekit-api refuses to mint (no room, no identity, expired …)."""
    now = int(time.time())
    body = {"iss": KEY, "sub": "alice", "nbf": now, "exp": now + 600, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret, algorithm="HS256")


def ws_url(server: BackgroundServer, path: str = "/rtc") -> str:
    return server.url.replace("http://", "ws://") + path


def connect(server: BackgroundServer, token: str, *, via_query: bool = False) -> websocket.WebSocket:
    if via_query:
        return websocket.create_connection(f"{ws_url(server)}?access_token={token}", timeout=RECV_TIMEOUT_S)
    header = [f"Authorization: Bearer {token}"]
    return websocket.create_connection(ws_url(server), header=header, timeout=RECV_TIMEOUT_S)


def next_frame(ws: websocket.WebSocket) -> tuple[int, bytes]:
    """The next data or close frame (pings are answered by websocket-client): (opcode, payload)."""
    opcode, frame = ws.recv_data_frame(control_frame=False)
    data = frame.data if hasattr(frame, "data") else frame
    return opcode, bytes(data)


def recv_signal(ws: websocket.WebSocket) -> proto_rtc.SignalResponse:
    opcode, data = next_frame(ws)
    assert opcode == websocket.ABNF.OPCODE_BINARY, f"expected a binary SignalResponse, got opcode {opcode}: {data!r}"
    return proto_rtc.SignalResponse.FromString(data)


def recv_kind(ws: websocket.WebSocket, kind: str) -> proto_rtc.SignalResponse:
    """Skip other signal responses until one of `kind` (e.g. "update"); bounded by the socket timeout per frame."""
    for _ in range(50):
        response = recv_signal(ws)
        if response.WhichOneof("message") == kind:
            return response
    raise AssertionError(f"no {kind!r} SignalResponse within 50 frames")


def recv_close_code(ws: websocket.WebSocket) -> int:
    """Read frames until the server's close frame; return its close code."""
    for _ in range(50):
        opcode, data = next_frame(ws)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(data[:2], "big")
    raise AssertionError("the server did not close the socket within 50 frames")


def ping_request(timestamp_ms: int, rtt_ms: int = 0) -> bytes:
    return proto_rtc.SignalRequest(ping_req=proto_rtc.Ping(timestamp=timestamp_ms, rtt=rtt_ms)).SerializeToString()


def leave_request() -> bytes:
    leave = proto_rtc.LeaveRequest(
        reason=proto_models.DisconnectReason.CLIENT_INITIATED, action=proto_rtc.LeaveRequest.DISCONNECT
    )
    return proto_rtc.SignalRequest(leave=leave).SerializeToString()


def room_api(server: BackgroundServer, call: Callable[[api.LiveKitAPI], Awaitable[T]], **kwargs: Any) -> T:
    """Run one livekit-api call (async, aiohttp) against the stand-in, with the demo key unless a token is given."""

    async def run() -> T:
        credentials = kwargs or {"api_key": KEY, "api_secret": SECRET}
        async with api.LiveKitAPI(server.url, **credentials) as lkapi:
            return await call(lkapi)

    return asyncio.run(run())


def poll(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """True as soon as `predicate()` holds, False if it still does not after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
