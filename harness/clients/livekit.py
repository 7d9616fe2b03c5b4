"""`LiveKitClient`: join tokens, Twirp RoomService over HTTP and the `/rtc` signalling websocket (docs/protocols.md §7).

    token: AccessToken(key, secret) when both are configured, else the app's token function (session.names)
    Twirp: POST /twirp/livekit.RoomService/<Method>, protobuf in and out, a service token per call
    /rtc:  connect ──► SignalResponse.join (timed: `LIVEKIT join`) ──► ping_req ⇄ pong_resp (`LIVEKIT ping`) ──► leave
              └─ reader greenlet: answers websocket pings, resolves pongs, keeps the signal alive with ping_req
                 every `ping_interval` the server asked for, fires `LIVEKIT connection` if the socket is lost

livekit-api's async `LiveKitAPI` cannot run in a gevent worker; its `AccessToken` is plain JWT code and is used.
Events fired: `LIVEKIT join`, `LIVEKIT ping`, `LIVEKIT leave`, `LIVEKIT connection`, `LIVEKIT twirp <Method>`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import gevent
import websocket
from gevent.event import AsyncResult
from gevent.socket import wait_read
from google.protobuf.message import DecodeError, Message
from livekit.api import AccessToken, VideoGrants
from livekit.protocol import models as proto_models
from livekit.protocol import room as proto_room
from livekit.protocol import rtc as proto_rtc

from harness.clients.events import Reporter, RequestEvent, RequestFailed
from harness.clients.http import Transport, error_fields, redact
from harness.clients.sockets import NO_REDIRECTS, close_websocket

SIGNAL_TIMEOUT_S = 10.0
"""How long a join waits for the JoinResponse, and a ping for its pong."""
PROTOCOL_VERSION = 16
"""Signalling protocol version announced in the `/rtc` query (the stand-in accepts any)."""
TOKEN_TTL_S = 6 * 3600
"""Lifetime of minted join tokens (livekit-api's default)."""

M = TypeVar("M", bound=Message)


def http_url(url: str) -> str:
    """livekit-api rewrites ws(s):// to http(s):// for Twirp; so do we."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}{parts.path}".rstrip("/")


def ws_url(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}{parts.path}".rstrip("/")


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class JoinResult:
    """A `/rtc` join: the connection (None on failure), the time from connect to JoinResponse, and any failure."""

    join_ms: float
    connection: RtcConnection | None
    error: RequestFailed | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class LiveKitClient:
    """LiveKit for one user (or the whole worker: nothing here is per-user but the reporter's labels)."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        environment: Any = None,
        request_event: RequestEvent | None = None,
        user_class: str = "",
        group: str = "",
        signal_timeout_s: float = SIGNAL_TIMEOUT_S,
    ) -> None:
        self.url = ws_url(url)
        self.api_key = api_key
        self.api_secret = api_secret
        self.signal_timeout_s = signal_timeout_s
        self.reporter = Reporter(
            environment=environment, request_event=request_event, user_class=user_class, group=group
        )
        self.transport = Transport(http_url(url), self.reporter, network_timeout_s=signal_timeout_s)

    # -- tokens -----------------------------------------------------------------------------------------------------
    @property
    def can_mint(self) -> bool:
        return bool(self.api_key and self.api_secret)

    def mint_token(self, identity: str, room: str, *, name: str = "", ttl_s: int = TOKEN_TTL_S) -> str:
        """A join token signed with the API secret (needs `api_key` and `api_secret`)."""
        if not self.can_mint:
            raise ValueError("minting a LiveKit token needs LIVEKIT_API_KEY and LIVEKIT_API_SECRET")
        grants = VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True)
        token = AccessToken(self.api_key, self.api_secret).with_identity(identity).with_grants(grants)
        if name:
            token = token.with_name(name)
        return token.with_ttl(dt.timedelta(seconds=ttl_s)).to_jwt()

    def join_token(self, identity: str, room: str, session: Any = None) -> tuple[str, str] | RequestFailed:
        """(token, url): minted when the key and secret are configured, else from the app's token function
        (`session.names.livekit_function`, HARNESS_LIVEKIT_FUNCTION) through `session` (a signed-in SupabaseSession;
        the function checks membership)."""
        if self.can_mint:
            return self.mint_token(identity, room), self.url
        if session is None:
            return RequestFailed("LIVEKIT token", 0, "no_credentials", "configure LIVEKIT_API_SECRET or pass a session")
        reply = session.livekit_token(room)
        if reply.error is not None:
            return reply.error
        body = reply.body if isinstance(reply.body, dict) else {}
        if not body.get("token"):
            label = f"FUNC {session.names.livekit_function}"
            return RequestFailed(label, reply.status, "bad_body", 'the reply has no "token"')
        return str(body["token"]), str(body.get("url") or self.url)

    def _service_token(self, room: str = "") -> str:
        grants = VideoGrants(room_create=True, room_list=True, room_admin=True, room=room)
        token = AccessToken(self.api_key, self.api_secret).with_grants(grants)
        return token.with_ttl(dt.timedelta(minutes=10)).to_jwt()

    # -- Twirp RoomService ---------------------------------------------------------------------------------------
    def twirp(self, method: str, request: Message, response_type: type[M], *, room: str = "") -> tuple[M | None, Any]:
        """Call `livekit.RoomService/<method>` (`LIVEKIT twirp <method>`). Returns (response message or None, Reply)."""
        if not self.can_mint:
            failure = RequestFailed(f"LIVEKIT twirp {method}", 0, "no_credentials", "Twirp calls need the API secret")
            self.reporter.fire("LIVEKIT", f"twirp {method}", 0.0, exception=failure)
            return None, failure
        headers = {"Authorization": f"Bearer {self._service_token(room)}", "Content-Type": "application/protobuf"}
        reply = self.transport.call(
            "LIVEKIT",
            f"twirp {method}",
            "POST",
            f"/twirp/livekit.RoomService/{method}",
            headers=headers,
            body=request.SerializeToString(),
            binary=True,
        )
        if reply.error is not None or not isinstance(reply.body, bytes | None):
            return None, reply
        try:
            return response_type.FromString(reply.body or b""), reply
        except DecodeError:
            return None, reply

    def create_room(
        self, name: str, *, empty_timeout_s: int = 0, max_participants: int = 0
    ) -> proto_models.Room | None:
        request = proto_room.CreateRoomRequest(
            name=name, empty_timeout=empty_timeout_s, max_participants=max_participants
        )
        return self.twirp("CreateRoom", request, proto_models.Room)[0]

    def list_rooms(self, names: tuple[str, ...] = ()) -> list[proto_models.Room] | None:
        response = self.twirp(
            "ListRooms", proto_room.ListRoomsRequest(names=list(names)), proto_room.ListRoomsResponse
        )[0]
        return list(response.rooms) if response is not None else None

    def delete_room(self, name: str) -> bool:
        request = proto_room.DeleteRoomRequest(room=name)
        return self.twirp("DeleteRoom", request, proto_room.DeleteRoomResponse, room=name)[0] is not None

    def list_participants(self, room: str) -> list[proto_models.ParticipantInfo] | None:
        request = proto_room.ListParticipantsRequest(room=room)
        response = self.twirp("ListParticipants", request, proto_room.ListParticipantsResponse, room=room)[0]
        return list(response.participants) if response is not None else None

    # -- /rtc -------------------------------------------------------------------------------------------------------
    def join(self, token: str, url: str | None = None, *, keepalive: bool = True) -> JoinResult:
        """Open `/rtc` with the token in the Authorization header and wait for the JoinResponse (`LIVEKIT join`).
        The returned `join_ms` (connect → JoinResponse) is what a `meeting.join` metric reports."""
        query = urlencode({"sdk": "python", "protocol": PROTOCOL_VERSION, "auto_subscribe": 1})
        target = f"{ws_url(url or self.url)}/rtc?{query}"
        started = time.perf_counter()
        failure: RequestFailed | None = None
        connection: RtcConnection | None = None
        try:
            ws = websocket.create_connection(
                target,
                header=[f"Authorization: Bearer {token}"],
                timeout=self.signal_timeout_s,
                enable_multithread=True,
                redirect_limit=NO_REDIRECTS,
            )
            try:
                join = _first_join(ws)
            except BaseException:
                close_websocket(ws)
                raise
            connection = RtcConnection(ws, join, self.reporter, self.signal_timeout_s, keepalive=keepalive)
        except websocket.WebSocketBadStatusException as exc:
            code, message = error_fields(exc.resp_body if isinstance(exc.resp_body, bytes) else None)
            failure = RequestFailed("LIVEKIT join", int(exc.status_code), code, message)
        except (websocket.WebSocketException, OSError, DecodeError, ValueError) as exc:
            failure = RequestFailed("LIVEKIT join", 0, type(exc).__name__, redact(str(exc)))
        join_ms = (time.perf_counter() - started) * 1000
        self.reporter.fire("LIVEKIT", "join", join_ms, exception=failure)
        return JoinResult(join_ms, connection, failure)

    def close(self) -> None:
        self.transport.close()


def _first_join(ws: websocket.WebSocket) -> proto_rtc.JoinResponse:
    """The server's first frame is always a binary SignalResponse; it must be `join`."""
    frame = ws.recv()
    response = proto_rtc.SignalResponse.FromString(frame if isinstance(frame, bytes) else frame.encode())
    kind = response.WhichOneof("message")
    if kind != "join":
        raise ValueError(f"the first signal message was {kind!r}, expected 'join'")
    return response.join


class RtcConnection:
    """A joined participant's signalling socket, read by one greenlet."""

    def __init__(
        self,
        ws: websocket.WebSocket,
        join: proto_rtc.JoinResponse,
        reporter: Reporter,
        timeout_s: float,
        *,
        keepalive: bool = True,
    ) -> None:
        self.ws = ws
        self.join = join
        self.reporter = reporter
        self.timeout_s = timeout_s
        self.keepalive = keepalive
        self.last_rtt_ms = 0
        self.updates = 0
        """Signal messages other than pongs received after the JoinResponse (participant and room updates)."""
        self.server_leave: proto_rtc.LeaveRequest | None = None
        self._pongs: dict[int, AsyncResult] = {}
        self._last_ping_ms = 0
        self._left = False
        ping_interval_s = float(join.ping_interval or 5)
        self._ping_interval_s = ping_interval_s
        self._next_keepalive = time.monotonic() + ping_interval_s
        self._reader = gevent.spawn(self._run)

    @property
    def identity(self) -> str:
        return self.join.participant.identity

    @property
    def room(self) -> str:
        return self.join.room.name

    @property
    def connected(self) -> bool:
        return not self._left and self.ws.connected

    def _send_ping(self, waiter: AsyncResult | None = None) -> None:
        stamp = max(now_ms(), self._last_ping_ms + 1)  # unique, so each pong finds its waiter
        self._last_ping_ms = stamp
        if waiter is not None:
            self._pongs[stamp] = waiter  # before sending: the reader may see the pong as soon as we yield
        request = proto_rtc.SignalRequest(ping_req=proto_rtc.Ping(timestamp=stamp, rtt=int(self.last_rtt_ms)))
        self.ws.send_binary(request.SerializeToString())

    def ping(self) -> float | RequestFailed:
        """One `ping_req` → `pong_resp` round trip (`LIVEKIT ping`); returns the RTT in ms."""
        started = time.perf_counter()
        waiter = AsyncResult()
        try:
            self._send_ping(waiter)
            answered = waiter.get(timeout=self.timeout_s)
        except (websocket.WebSocketException, OSError) as exc:
            answered = exc
        except gevent.Timeout:
            answered = None
        rtt_ms = (time.perf_counter() - started) * 1000
        failure = None
        if answered is None or isinstance(answered, BaseException):
            detail = redact(str(answered)) if answered is not None else f"no pong_resp within {self.timeout_s} s"
            failure = RequestFailed("LIVEKIT ping", 0, "no_pong", detail)
        else:
            self.last_rtt_ms = round(rtt_ms)
        self.reporter.fire("LIVEKIT", "ping", rtt_ms, exception=failure)
        return failure if failure is not None else rtt_ms

    def leave(self) -> None:
        """Send `leave` (CLIENT_INITIATED, DISCONNECT) and close the socket (`LIVEKIT leave`)."""
        if self._left:
            return
        self._left = True
        started = time.perf_counter()
        failure = None
        request = proto_rtc.SignalRequest(
            leave=proto_rtc.LeaveRequest(
                reason=proto_models.DisconnectReason.CLIENT_INITIATED, action=proto_rtc.LeaveRequest.DISCONNECT
            )
        )
        try:
            self.ws.send_binary(request.SerializeToString())
        except (websocket.WebSocketException, OSError) as exc:
            failure = RequestFailed("LIVEKIT leave", 0, type(exc).__name__, redact(str(exc)))
        self._stop()
        self.reporter.fire("LIVEKIT", "leave", (time.perf_counter() - started) * 1000, exception=failure)

    def close(self) -> None:
        """Drop the socket without a leave (what a crashed app does)."""
        self._left = True
        self._stop()

    def _stop(self) -> None:
        close_websocket(self.ws)
        if self._reader is not gevent.getcurrent():
            self._reader.kill(block=True, timeout=2)
        for waiter in self._pongs.values():
            waiter.set(None)
        self._pongs.clear()

    def _run(self) -> None:
        try:
            while not self._left:
                if self.keepalive and time.monotonic() >= self._next_keepalive:
                    self._next_keepalive = time.monotonic() + self._ping_interval_s
                    self._send_ping()  # no waiter: the pong only proves the signal is alive
                sock = self.ws.sock
                if sock is None:
                    raise websocket.WebSocketConnectionClosedException("socket closed")
                wait_s = max(0.0, self._next_keepalive - time.monotonic()) if self.keepalive else None
                with contextlib.suppress(TimeoutError):
                    wait_read(sock.fileno(), timeout=wait_s)
                    self._read_one()
        except (websocket.WebSocketException, OSError, DecodeError) as exc:
            if not self._left:
                failure = RequestFailed("LIVEKIT connection", 0, "lost", redact(str(exc)) or type(exc).__name__)
                self.reporter.fire("LIVEKIT", "connection", 0.0, exception=failure)
        finally:
            for waiter in self._pongs.values():
                waiter.set(None)
            self._pongs.clear()

    def _read_one(self) -> None:
        opcode, data = self.ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise websocket.WebSocketConnectionClosedException("the server closed the signal connection")
        if opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY) or not data:
            return
        response = proto_rtc.SignalResponse.FromString(data if isinstance(data, bytes) else data.encode())
        kind = response.WhichOneof("message")
        if kind == "pong_resp":
            waiter = self._pongs.pop(response.pong_resp.last_ping_timestamp, None)
            if waiter is not None:
                waiter.set(True)
        elif kind == "leave":
            self.server_leave = response.leave
            self.updates += 1
        else:
            self.updates += 1
