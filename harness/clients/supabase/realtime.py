"""`RealtimeClient`: Supabase Realtime (Phoenix channels, vsn 1.0.0, docs/protocols.md §4) over websocket-client.

    user greenlet ── join / broadcast / track ──► ws.send ───────────────────────────────► server
                        ▲ waits on an AsyncResult                                            │
    reader greenlet ◄───┴── reply by ref ◄── ws.recv ◄── wait_read(≤ next heartbeat) ◄───────┘
        │ heartbeat every `heartbeat_interval_s`; a heartbeat still unanswered at the next one = connection dead
        │ on loss: fire `RT connection` failure, back off (exponential, jittered), reconnect, rejoin every channel
        └─► callbacks: postgres_changes, broadcast, presence, system (they run in the reader: keep them short)

One greenlet per socket and no per-socket buffers beyond websocket-client's own, so one process holds thousands of
idle connections. realtime-py cannot run under gevent (it is asyncio); this client speaks the same frames, all
built by `api` (URL, bindings, join config, heartbeat, broadcast, presence, token and leave frames).

Events fired: `RT connect`, `RT join <kind>` (kind: postgres_changes, presence or broadcast), `RT broadcast`,
`RT presence track`, `RT connection` (failure when the socket is lost), `RT reconnect` (time from loss to
reconnected), `RT system` (failure when the server reports an error on a channel). Each carries
`context.origin_region`: the value of `region_header` (the target's HARNESS_REGION_HEADER, `x-origin-region` by
default) on the handshake that opened the socket ("" when none said). `headers` go on every handshake (first
connect and each reconnect). Importing this module loads Locust and gevent, as `session.py` does.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gevent
import websocket
from gevent.event import AsyncResult
from gevent.socket import wait_read

from harness.clients.events import Reporter, RequestEvent, RequestFailed
from harness.clients.http import error_fields, redact
from harness.clients.sockets import NO_REDIRECTS, close_websocket
from harness.clients.supabase import api
from harness.model.metrics import REGION_HEADER

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 25.0
"""Seconds between heartbeats (realtime-py's default; the server drops a socket silent for ~60 s)."""
REPLY_TIMEOUT_S = 10.0
"""How long a join (or an acked push) waits for its `phx_reply` (realtime-py's push timeout)."""
CONNECT_TIMEOUT_S = 10.0
"""Websocket handshake timeout."""
RECONNECT_BASE_S = 0.5
"""First reconnect delay; doubles per failed attempt up to `RECONNECT_MAX_S`, each delay jittered to 50–100 %."""
RECONNECT_MAX_S = 15.0
MAX_RECONNECT_ATTEMPTS = 30
"""Consecutive failed reconnects before the client gives up (and fires one last `RT connection` failure)."""

Callback = Callable[[dict[str, Any]], None]
PresenceCallback = Callable[[str, dict[str, Any]], None]


@dataclass
class Channel:
    """One `realtime:<name>` channel: its join config, callbacks, and join state (kept across reconnects)."""

    name: str
    postgres_changes: list[dict[str, Any]] = field(default_factory=list)
    broadcast_self: bool = False
    broadcast_ack: bool = False
    presence_key: str | None = None
    """Presence is enabled when this is set ("" lets the server pick a key)."""
    private: bool = False
    wanted: bool = False
    """The user asked to be joined: reconnects rejoin it, until `leave`."""
    joined: bool = False
    join_ref: str | None = None
    binding_ids: list[int] = field(default_factory=list)
    postgres_callbacks: list[tuple[str, Callback]] = field(default_factory=list)
    broadcast_callbacks: dict[str, list[Callback]] = field(default_factory=dict)
    presence_callbacks: list[PresenceCallback] = field(default_factory=list)
    system_callbacks: list[Callback] = field(default_factory=list)

    @property
    def topic(self) -> str:
        return api.topic(self.name)

    @property
    def kind(self) -> str:
        """What the join is named after in stats: postgres_changes, presence or broadcast."""
        if self.postgres_changes:
            return "postgres_changes"
        return "presence" if self.presence_key is not None else "broadcast"

    def on_postgres_change(self, callback: Callback, event: str = "*") -> Channel:
        """`callback(data)` with the change's `data` (`type`, `table`, `record`, `old_record`, `commit_timestamp`)."""
        self.postgres_callbacks.append((event, callback))
        return self

    def on_broadcast(self, event: str, callback: Callback) -> Channel:
        """`callback(message)` with `{"type": "broadcast", "event", "payload"}`; event "*" receives every one."""
        self.broadcast_callbacks.setdefault(event, []).append(callback)
        return self

    def on_presence(self, callback: PresenceCallback) -> Channel:
        """`callback(event, payload)` for `presence_state` and `presence_diff`."""
        self.presence_callbacks.append(callback)
        return self

    def on_system(self, callback: Callback) -> Channel:
        self.system_callbacks.append(callback)
        return self

    def join_config(self) -> dict[str, Any]:
        return api.join_config(
            self.postgres_changes,
            broadcast_ack=self.broadcast_ack,
            broadcast_self=self.broadcast_self,
            presence_key=self.presence_key,
            private=self.private,
        )


@dataclass
class _Pending:
    """A push waiting for its `phx_reply`: resolved by the reader, or expired by it after `REPLY_TIMEOUT_S`."""

    started: float
    on_reply: Callable[[_Pending, str, dict[str, Any] | None], None]
    result: AsyncResult = field(default_factory=AsyncResult)


class RealtimeClient:
    """One Realtime websocket with its channels; reconnects by itself until `close`."""

    def __init__(
        self,
        base_url: str,
        apikey: str,
        *,
        access_token: str | None = None,
        session: Any = None,
        environment: Any = None,
        request_event: RequestEvent | None = None,
        user_class: str = "",
        group: str = "",
        headers: Mapping[str, str] | None = None,
        region_header: str | None = None,
        heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S,
        reply_timeout_s: float = REPLY_TIMEOUT_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        reconnect_base_s: float = RECONNECT_BASE_S,
        reconnect_max_s: float = RECONNECT_MAX_S,
        max_reconnect_attempts: int = MAX_RECONNECT_ATTEMPTS,
    ) -> None:
        self.url = api.realtime_url(base_url, apikey)
        self.reporter = Reporter(
            environment=environment, request_event=request_event, user_class=user_class, group=group
        )
        self.headers = dict(headers or {})
        """Sent on every websocket handshake, e.g. `CloudFront-Viewer-Country` on the local stack."""
        self.region_header = region_header or (session.names.region_header if session is not None else REGION_HEADER)
        """Handshake response header naming the region: the session's (HARNESS_REGION_HEADER) unless given."""
        self.origin_region = ""
        """Region that answered the last handshake (`region_header`), "" if none said; in every event's context."""
        self.access_token = access_token
        if session is not None:
            # A SupabaseSession: use its user token now, and push every refreshed one to the joined channels.
            self.access_token = session.access_token or access_token
            session.token_listeners.append(self.set_access_token)
        self._session = session
        self.heartbeat_interval_s = heartbeat_interval_s
        self.reply_timeout_s = reply_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.reconnect_base_s = reconnect_base_s
        self.reconnect_max_s = reconnect_max_s
        self.max_reconnect_attempts = max_reconnect_attempts
        self.channels: dict[str, Channel] = {}
        self.reconnects = 0
        """Successful reconnects since `connect`."""
        self.heartbeat_rtt_ms: float | None = None
        """Round trip of the last answered heartbeat."""
        self._ws: websocket.WebSocket | None = None
        self._reader: gevent.Greenlet | None = None
        self._refs = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._heartbeat_ref: str | None = None
        self._heartbeat_sent = 0.0
        self._next_heartbeat = 0.0
        self._closed = False
        self._lost_at = 0.0

    # -- connection --------------------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._ws is not None and self._ws.connected

    def connect(self) -> bool:
        """Open the socket (`RT connect`) and start the reader greenlet. Returns whether it connected."""
        self._closed = False
        if not self._open("connect"):
            return False
        if self._reader is None or self._reader.dead:
            self._reader = gevent.spawn(self._run)
        return True

    def _open(self, name: str, *, fire_success: bool = True) -> bool:
        """Handshake; a failure always fires `RT <name>`, a success only when `fire_success`."""
        started = time.perf_counter()
        try:
            ws = websocket.create_connection(
                self.url,
                header=[f"{k}: {v}" for k, v in self.headers.items()],
                timeout=self.connect_timeout_s,
                skip_utf8_validation=True,
                enable_multithread=True,
                redirect_limit=NO_REDIRECTS,
            )
        except (websocket.WebSocketException, OSError) as exc:
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.origin_region = self._region(getattr(exc, "resp_headers", None))  # a refused handshake may name one
            self._fire(name, elapsed_ms, _failure(f"RT {name}", exc))
            return False
        ws.settimeout(self.reply_timeout_s)  # bounds a read that stalls mid-frame
        self.origin_region = self._region(ws.getheaders())
        self._ws = ws
        self._heartbeat_ref = None
        self._next_heartbeat = time.monotonic()  # realtime-py heartbeats right after connecting
        if fire_success:
            self._fire(name, (time.perf_counter() - started) * 1000)
        return True

    def _region(self, headers: Mapping[str, str] | None) -> str:
        """The region header's value; websocket-client lower-cases the handshake's header names."""
        return str((headers or {}).get(self.region_header.lower(), "") or "")

    def _fire(self, name: str, elapsed_ms: float, failure: RequestFailed | None = None) -> None:
        """Every event of this client: `RT <name>`, with the region of the socket it happened on."""
        self.reporter.fire("RT", name, elapsed_ms, exception=failure, context={"origin_region": self.origin_region})

    def close(self) -> None:
        """Leave nothing behind: stop reconnecting, close the socket, stop the reader."""
        self._closed = True
        if self._session is not None and self.set_access_token in self._session.token_listeners:
            self._session.token_listeners.remove(self.set_access_token)
        for pending in self._pending.values():
            pending.result.set(None)
        self._pending.clear()
        ws, self._ws = self._ws, None
        if ws is not None:
            close_websocket(ws)
        if self._reader is not None and self._reader is not gevent.getcurrent():
            self._reader.kill(block=True, timeout=2)
        self._reader = None

    # -- channels -------------------------------------------------------------------------------------------------
    def channel(
        self,
        name: str,
        *,
        postgres_changes: Iterable[dict[str, Any]] = (),
        broadcast_self: bool = False,
        broadcast_ack: bool = False,
        presence_key: str | None = None,
        private: bool = False,
    ) -> Channel:
        """Declare a channel (not joined yet); add callbacks, then `join` it."""
        chan = Channel(
            name,
            list(postgres_changes),
            broadcast_self=broadcast_self,
            broadcast_ack=broadcast_ack,
            presence_key=presence_key,
            private=private,
        )
        self.channels[chan.topic] = chan
        return chan

    def join(self, channel: Channel) -> RequestFailed | None:
        """Join and wait for the reply (`RT join <kind>`, timed from send to reply). None on success."""
        channel.wanted = True
        self.channels[channel.topic] = channel
        pending = self._send_join(channel)
        if pending is None:
            failure = RequestFailed(f"RT join {channel.kind}", 0, "not_connected", "the socket is not connected")
            self._fire(f"join {channel.kind}", 0.0, failure)
            return failure
        return self._await(pending, f"RT join {channel.kind}")

    def _await(self, pending: _Pending, name: str) -> RequestFailed | None:
        """Wait for the reader to resolve a push; it expires unanswered ones, so this only backstops a dead reader."""
        try:
            outcome = pending.result.get(timeout=self.reply_timeout_s * 2)
        except gevent.Timeout:
            return RequestFailed(name, 0, "timeout", f"no reply in {self.reply_timeout_s * 2} s")
        return outcome if isinstance(outcome, RequestFailed) else None

    def _send_join(self, channel: Channel) -> _Pending | None:
        def on_reply(pending: _Pending, status: str, response: dict[str, Any] | None) -> None:
            elapsed_ms = (time.perf_counter() - pending.started) * 1000
            failure = None
            if response is None:
                failure = RequestFailed(
                    f"RT join {channel.kind}", 0, "timeout", f"no reply in {self.reply_timeout_s} s"
                )
            elif status != "ok":
                reason = str(response.get("reason", ""))
                code, _, message = reason.partition(": ")
                failure = RequestFailed(f"RT join {channel.kind}", 0, code if message else "error", message or reason)
            else:
                channel.joined = True
                channel.binding_ids = [int(b["id"]) for b in response.get("postgres_changes", []) if "id" in b]
            self._fire(f"join {channel.kind}", elapsed_ms, failure)
            pending.result.set(failure)

        ref = str(next(self._refs))
        channel.join_ref = ref
        channel.joined = False
        return self._push(api.join(channel.topic, ref, channel.join_config(), self.access_token), ref, on_reply)

    def leave(self, channel: Channel) -> None:
        """Leave a channel and stop rejoining it."""
        channel.wanted = False
        if channel.joined:
            self._send(api.leave(channel.topic, str(next(self._refs)), channel.join_ref))
        channel.joined = False
        self.channels.pop(channel.topic, None)

    def broadcast(self, channel: Channel, event: str, payload: dict[str, Any]) -> RequestFailed | None:
        """Send a broadcast (`RT broadcast`); with `broadcast_ack` the time is send → server ack, else send only."""
        topic = channel.topic
        if channel.broadcast_ack:
            return self._acked(
                "broadcast", channel, lambda ref, join_ref: api.broadcast(topic, event, payload, ref, join_ref)
            )
        started = time.perf_counter()
        sent = self._send(api.broadcast(topic, event, payload, None, channel.join_ref))
        failure = None if sent else RequestFailed("RT broadcast", 0, "not_connected", "the socket is not connected")
        self._fire("broadcast", (time.perf_counter() - started) * 1000, failure)
        return failure

    def track(self, channel: Channel, state: dict[str, Any]) -> RequestFailed | None:
        """Track presence state on a channel (`RT presence track`, send → reply)."""
        topic = channel.topic
        return self._acked(
            "presence track", channel, lambda ref, join_ref: api.presence_track(topic, state, ref, join_ref)
        )

    def _acked(self, name: str, channel: Channel, build: Callable[[str, str], str]) -> RequestFailed | None:
        """Push a frame `build(ref, join_ref)` and wait for its reply (`RT <name>`, send → reply)."""

        def on_reply(pending: _Pending, status: str, response: dict[str, Any] | None) -> None:
            elapsed_ms = (time.perf_counter() - pending.started) * 1000
            failure = None
            if response is None:
                failure = RequestFailed(f"RT {name}", 0, "timeout", f"no reply in {self.reply_timeout_s} s")
            elif status != "ok":
                failure = RequestFailed(f"RT {name}", 0, "error", str(response.get("reason", "")))
            self._fire(name, elapsed_ms, failure)
            pending.result.set(failure)

        ref = str(next(self._refs))
        pending = self._push(build(ref, channel.join_ref if channel.join_ref is not None else ref), ref, on_reply)
        if pending is None:
            failure = RequestFailed(f"RT {name}", 0, "not_connected", "the socket is not connected")
            self._fire(name, 0.0, failure)
            return failure
        return self._await(pending, f"RT {name}")

    def set_access_token(self, token: str) -> None:
        """Use a new user token: pushed to every joined channel (`access_token` event; the server never replies)."""
        self.access_token = token
        for chan in list(self.channels.values()):
            if chan.joined:
                self._send(api.access_token(chan.topic, token, str(next(self._refs)), chan.join_ref))

    # -- frames ---------------------------------------------------------------------------------------------------
    def _send(self, frame: str) -> bool:
        """Send one encoded frame (from `api`); False when the socket is gone or the send failed."""
        ws = self._ws
        if ws is None:
            return False
        try:
            ws.send(frame)
        except (websocket.WebSocketException, OSError):
            return False
        return True

    def _push(
        self, frame: str, ref: str, on_reply: Callable[[_Pending, str, dict[str, Any] | None], None]
    ) -> _Pending | None:
        """Send a frame whose `ref` is `ref` and register what to do with its `phx_reply`."""
        pending = _Pending(time.perf_counter(), on_reply)
        self._pending[ref] = pending
        if not self._send(frame):
            del self._pending[ref]
            return None
        return pending

    def _dispatch(self, text: str | bytes) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            log.warning("realtime: dropped a frame that is not JSON (%d bytes)", len(text))
            return
        if not isinstance(message, dict):
            return
        event = message.get("event")
        payload = message.get("payload") or {}
        if event == "phx_reply":
            ref = message.get("ref")
            if ref is not None and ref == self._heartbeat_ref:
                self.heartbeat_rtt_ms = (time.perf_counter() - self._heartbeat_sent) * 1000
                self._heartbeat_ref = None
                return
            pending = self._pending.pop(ref, None) if ref is not None else None
            if pending is not None:
                pending.on_reply(pending, str(payload.get("status")), payload.get("response") or {})
            return
        chan = self.channels.get(message.get("topic", ""))
        if chan is None:
            return
        if event == "postgres_changes":
            data = payload.get("data") or {}
            ids = payload.get("ids") or []
            if chan.binding_ids and ids and not set(ids) & set(chan.binding_ids):
                return
            kind = data.get("type")
            for wanted, callback in chan.postgres_callbacks:
                if wanted in ("*", kind):
                    _safely(callback, data)
        elif event == "broadcast":
            for callback in chan.broadcast_callbacks.get(payload.get("event", ""), []) + chan.broadcast_callbacks.get(
                "*", []
            ):
                _safely(callback, payload)
        elif event in ("presence_state", "presence_diff"):
            for presence_callback in chan.presence_callbacks:
                _safely(presence_callback, event, payload)
        elif event == "system":
            if payload.get("status") == "error":
                failure = RequestFailed("RT system", 0, str(payload.get("extension", "")), str(payload.get("message")))
                self._fire("system", 0.0, failure)
            for callback in chan.system_callbacks:
                _safely(callback, payload)
        elif event in ("phx_close", "phx_error"):
            chan.joined = False
            if event == "phx_error":
                failure = RequestFailed(f"RT channel {chan.kind}", 0, "phx_error", "the server closed the channel")
                self._fire(f"channel {chan.kind}", 0.0, failure)

    # -- the reader greenlet ---------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._closed:
            ws = self._ws
            if ws is None:
                if not self._reconnect():
                    return
                continue
            try:
                self._tick(ws)
            except (websocket.WebSocketException, OSError) as exc:
                if self._closed:
                    return
                self._lost(exc)

    def _tick(self, ws: websocket.WebSocket) -> None:
        now = time.monotonic()
        if now >= self._next_heartbeat:
            if self._heartbeat_ref is not None:
                raise websocket.WebSocketTimeoutException("heartbeat not answered within one heartbeat interval")
            self._heartbeat_ref = str(next(self._refs))
            self._heartbeat_sent = time.perf_counter()
            self._next_heartbeat = now + self.heartbeat_interval_s
            if not self._send(api.heartbeat(self._heartbeat_ref)):
                raise websocket.WebSocketConnectionClosedException("heartbeat could not be sent")
        self._expire_pending()
        wait_s = max(0.0, self._next_heartbeat - time.monotonic())
        if self._pending:
            wait_s = min(wait_s, self.reply_timeout_s / 4)
        sock = ws.sock
        if sock is None:
            raise websocket.WebSocketConnectionClosedException("socket closed")
        pending_ssl = getattr(sock, "pending", None)
        if not (pending_ssl and pending_ssl()):
            try:
                wait_read(sock.fileno(), timeout=wait_s)
            except TimeoutError:
                return
        opcode, data = ws.recv_data(control_frame=True)  # return after a ping, never block past it
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise websocket.WebSocketConnectionClosedException("the server closed the socket")
        if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY) and data:
            self._dispatch(data)

    def _expire_pending(self) -> None:
        if not self._pending:
            return
        cutoff = time.perf_counter() - self.reply_timeout_s
        for ref, pending in list(self._pending.items()):
            if pending.started < cutoff:
                del self._pending[ref]
                pending.on_reply(pending, "timeout", None)

    def _lost(self, exc: BaseException) -> None:
        ws, self._ws = self._ws, None
        self._lost_at = time.perf_counter()
        if ws is not None:
            with contextlib.suppress(websocket.WebSocketException, OSError):
                ws.shutdown()
        for chan in self.channels.values():
            chan.joined = False
        for ref, pending in list(self._pending.items()):
            del self._pending[ref]
            pending.on_reply(pending, "lost", None)
        self._fire("connection", 0.0, _failure("RT connection", exc, code="lost"))

    def _reconnect(self) -> bool:
        """Back off, reconnect, rejoin every wanted channel (replies are handled by the reader as they arrive)."""
        for attempt in range(self.max_reconnect_attempts):
            delay_s = min(self.reconnect_max_s, self.reconnect_base_s * 2**attempt)
            gevent.sleep(delay_s * random.uniform(0.5, 1.0))
            if self._closed:
                return False
            if self._open("reconnect", fire_success=False):
                self.reconnects += 1
                self._fire("reconnect", (time.perf_counter() - self._lost_at) * 1000)
                for chan in list(self.channels.values()):
                    if chan.wanted:
                        self._send_join(chan)
                return True
        failure = RequestFailed(
            "RT connection", 0, "gave_up", f"no reconnect after {self.max_reconnect_attempts} attempts"
        )
        self._fire("connection", 0.0, failure)
        return False


def _safely(callback: Callable[..., None], *args: Any) -> None:
    """Run a user callback in the reader; a bug in it is logged and must not drop the socket."""
    try:
        callback(*args)
    except Exception:
        log.exception("realtime: a callback raised; the connection stays up")


def _failure(name: str, exc: BaseException, code: str = "") -> RequestFailed:
    """A socket error as a failure; a refused handshake shows the server's status and error body (§4.1)."""
    if isinstance(exc, websocket.WebSocketBadStatusException):
        body_code, message = error_fields(exc.resp_body if isinstance(exc.resp_body, bytes) else None)
        return RequestFailed(name, int(exc.status_code), code or body_code, message)
    return RequestFailed(name, 0, code or type(exc).__name__, redact(str(exc)))
