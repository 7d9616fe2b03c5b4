"""One Realtime websocket: reads client frames, runs the channel protocol, and writes through a bounded outbox.

Writes never block the caller: `enqueue` appends a ready frame and, if no writer is running, starts one that
drains the outbox and exits. An idle socket therefore holds no writer task, and a socket whose outbox overflows
(a client that stopped reading) is dropped instead of growing memory.

Load-test frames come with their hop bucket (`hop_key`): the writer counts them `written` once the socket took them,
and frames lost on the way (outbox overflow, a closed socket, a failed write) are counted by reason
(harness/model/hop_counts.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from harness.model import hop_counts as hc
from harness.model.keys import Claims
from harness.refstack.region.database import Database
from harness.refstack.region.realtime import authorization, frames, tokens
from harness.refstack.region.realtime.authorization import Permissions
from harness.refstack.region.realtime.channel import Channel, JoinConfig, JoinPayloadError
from harness.refstack.region.realtime.codec import V1_CODEC, Codec
from harness.refstack.region.realtime.hub import Hub
from harness.refstack.region.state import DB

log = logging.getLogger(__name__)


class Connection:
    def __init__(
        self,
        hub: Hub,
        request: web.Request,
        ws: web.WebSocketResponse,
        token: str,
        claims: Claims,
        secret: str,
        codec: Codec = V1_CODEC,
    ) -> None:
        self.hub = hub
        self.codec = codec
        self.request = request
        self.ws = ws
        self.token = token
        self.claims = claims
        self.secret = secret
        self.channels: dict[str, Channel] = {}
        self.closed = False
        self._outbox: deque[tuple[str | bytes, str | None]] = deque()
        """(frame, hop bucket of a load-test frame or None)."""
        self._writer: asyncio.Task[None] | None = None
        self._pending: asyncio.Task[None] | None = None
        """A private join or token refresh waiting for its policy check: the read loop waits for it before the
        next frame, as a Phoenix socket waits for a channel's join (so frames keep their order)."""
        self._loop = asyncio.get_running_loop()

    # -- writing --------------------------------------------------------------------------------------------------
    def enqueue(self, text: str | bytes, hop_key: str | None = None) -> None:
        if self.closed:
            if hop_key is not None:
                self.hub.hops.add(hop_key, hc.DROPPED_CLOSED)
            return
        if len(self._outbox) >= self.hub.settings.max_queued_frames:
            log.warning(
                "realtime: dropping a slow socket from %s: %d frames queued", self.request.remote, len(self._outbox)
            )
            self.hub.dropped_slow_sockets += 1
            self._outbox.append((text, hop_key))
            self._count_lost(hc.DROPPED_SLOW, slow_socket=True)
            self._outbox.clear()
            self.abort()
            return
        self._outbox.append((text, hop_key))
        if self._writer is None:
            self._writer = self._loop.create_task(self._drain())

    async def _drain(self) -> None:
        hops = self.hub.hops
        try:
            while self._outbox and not self.closed:
                text, key = self._outbox.popleft()
                if isinstance(text, bytes):  # a vsn 2.0.0 binary broadcast (never a load-test frame)
                    await self.ws.send_bytes(text)
                    continue
                if key is None:
                    await self.ws.send_str(text)
                    continue
                fault = self.hub.fault
                if fault is not None and fault.drop(hc.WRITTEN):
                    hops.add(key, hc.FAULT_DROPPED)
                    continue
                try:
                    await self.ws.send_str(text)
                except BaseException:  # a failed write, or the writer cancelled by abort() mid-write
                    hops.add(key, hc.WRITE_FAILED)
                    raise
                hops.add(key, hc.WRITTEN)
        except Exception as exc:  # the peer went away mid-write: the reader side ends the connection
            log.debug("realtime: write failed: %r", exc)
            self._count_lost(hc.WRITE_FAILED)
            self._outbox.clear()
        finally:
            self._writer = None

    def _count_lost(self, reason: str, slow_socket: bool = False) -> None:
        """Count the load-test frames still queued as lost for `reason` (only when a socket goes: rare)."""
        hops, first = self.hub.hops, None
        for _, key in self._outbox:
            if key is not None:
                hops.add(key, reason)
                first = first or key
        if slow_socket and first is not None:
            hops.add(first, hc.SLOW_SOCKETS)

    def abort(self) -> None:
        """Drop the connection now, without a close handshake (a slow consumer, or a simulated network drop)."""
        self.closed = True
        self._count_lost(hc.DROPPED_CLOSED)
        self._outbox.clear()
        if self._writer is not None:
            self._writer.cancel()
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def close(self, code: int = WSCloseCode.GOING_AWAY, reason: str = "") -> None:
        """Close with a close frame after flushing what is queued (bounded by the close timeout); `reason` is cut
        to the 123 bytes a close frame carries."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._writer), self.hub.settings.close_timeout_s)
        self.closed = True
        with contextlib.suppress(Exception):
            message = reason.encode("utf-8", "replace")[:123].decode("utf-8", "ignore").encode("utf-8")
            await self.ws.close(code=code, message=message)

    # -- reading --------------------------------------------------------------------------------------------------
    async def run(self) -> None:
        idle_s = self.hub.settings.idle_timeout_s
        while not self.closed:
            try:
                msg = await self.ws.receive(timeout=idle_s)
            except TimeoutError:
                log.info("realtime: closing a socket idle for %.0f s", idle_s)
                await self.close(WSCloseCode.OK)
                return
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                return  # CLOSE, CLOSING, CLOSED, ERROR (aiohttp closed a text frame that is not UTF-8 with 1007)
            try:
                self.handle_frame(msg.data)
                if self._pending is not None:  # a policy check: frames stay in order, as Phoenix keeps them
                    await self._pending
            except frames.FrameError as exc:  # nothing to answer on
                await self._refuse(str(exc))
                return
            except Exception:  # a bug must not take the socket down; the fuzz tests fail on this log
                log.exception("realtime: error handling a client frame")
            finally:
                self._pending = None

    async def _refuse(self, reason: str) -> None:
        """Close on a frame that cannot be answered, with 1007 and the reason, as a client can see and log it."""
        log.info("realtime: closing a socket from %s: %s", self.request.remote, reason[:200])
        await self.close(WSCloseCode.INVALID_TEXT, reason)

    def teardown(self) -> None:
        self.closed = True
        if self._pending is not None:
            self._pending.cancel()
        self._count_lost(hc.DROPPED_CLOSED)
        self._outbox.clear()
        for channel in list(self.channels.values()):
            self.hub.remove_channel(channel)
        self.channels.clear()

    def handle_frame(self, data: str | bytes) -> None:
        """Run one client frame (text, or bytes from a binary frame). A refused frame that names a topic gets a
        phx_reply error there; one that names none raises FrameError (the caller closes the socket)."""
        try:
            msg = self.codec.parse(data)
        except frames.FrameError as exc:
            if exc.topic is None:
                raise
            self.enqueue(self.codec.error(exc.topic, exc.ref, f"MalformedMessage: {exc}"))
            return
        if msg.topic == frames.PHOENIX_TOPIC and msg.event == "heartbeat":
            self.enqueue(self.codec.ok(msg.topic, msg.ref))
        elif msg.event == "phx_join":
            self._join(msg)
        elif (channel := self.channels.get(msg.topic)) is None:
            self.enqueue(self.codec.error(msg.topic, msg.ref, "unmatched topic"))
        else:
            self._channel_event(channel, msg)

    # -- channel protocol -----------------------------------------------------------------------------------------
    def _join(self, msg: frames.Inbound) -> None:
        topic, ref, codec = msg.topic, msg.ref, self.codec
        if not topic.startswith(frames.TOPIC_PREFIX):
            self.enqueue(codec.error(topic, ref, "unmatched topic"))
            return
        if topic == frames.TOPIC_PREFIX:
            self.enqueue(codec.error(topic, ref, "TopicNameRequired: You must provide a topic name", msg.join_ref))
            return
        try:
            config = JoinConfig.parse(msg.payload, self.hub.catalog)
        except JoinPayloadError as exc:
            self.enqueue(codec.error(topic, ref, f"InvalidJoinPayload: {exc}", msg.join_ref))
            return
        token = self._channel_token(msg.payload) or self.token
        checked = tokens.check(token, self.secret)
        if isinstance(checked, tokens.Rejected):
            self.enqueue(codec.error(topic, ref, checked.join_reason, msg.join_ref))
            return
        if config.private:
            self._pending = self._loop.create_task(self._join_private(msg, config, token, checked))
            return
        self._admit(msg, config, token, checked, None)

    async def _join_private(self, msg: frames.Inbound, config: JoinConfig, token: str, claims: Claims) -> None:
        """A private channel: joined only if the caller's policies on realtime.messages let it read broadcasts."""
        topic = msg.topic
        try:
            found = await authorization.check_join(self.db, topic.removeprefix(frames.TOPIC_PREFIX), claims.raw)
        except authorization.Refused as exc:
            self.enqueue(self.codec.error(topic, msg.ref, exc.reason, msg.join_ref))
            return
        if not self.closed:
            self._admit(msg, config, token, claims, found)

    def _admit(
        self, msg: frames.Inbound, config: JoinConfig, token: str, claims: Claims, permissions: Permissions | None
    ) -> None:
        topic, ref, codec = msg.topic, msg.ref, self.codec
        old = self.channels.pop(topic, None)
        if old is not None:  # Phoenix closes the previous channel of a duplicate join
            self.hub.remove_channel(old)
        channel = Channel(self, topic, msg.join_ref or ref, config, token, claims, permissions=permissions)
        self.channels[topic] = channel
        self.hub.add_channel(channel)
        self._schedule_token_check(channel)
        echo = [{**b.echo, "id": b.id} for b in config.bindings]
        self.enqueue(codec.ok(topic, ref, {"postgres_changes": echo}, msg.join_ref))
        if channel.presence_enabled and channel.presence_readable:
            self.enqueue(self.hub.presence_state(channel))
        if config.bindings:
            failed = next((b.error for b in config.bindings if b.error), None)
            status, message = ("ok", "Subscribed to PostgreSQL") if failed is None else ("error", failed)
            self.enqueue(codec.system(topic, "postgres_changes", status, message, channel.join_ref))

    @property
    def db(self) -> Database:
        return self.request.app[DB]

    @staticmethod
    def _channel_token(payload: dict[str, Any]) -> str | None:
        for name in ("user_token", "access_token"):
            value = payload.get(name)
            if isinstance(value, str) and value and not value.startswith("sb_"):
                return value
        return None

    def _channel_event(self, channel: Channel, msg: frames.Inbound) -> None:
        event, payload, codec, join_ref = msg.event, msg.payload, self.codec, channel.join_ref
        if event == "phx_leave":
            self._remove(channel)
            self.enqueue(codec.ok(msg.topic, msg.ref, None, join_ref))
            self.enqueue(codec.close(msg.topic, join_ref))
        elif event == "broadcast":
            if not channel.may_broadcast:
                pass  # dropped, as Realtime drops them (the ack below is still sent)
            elif msg.user_broadcast is not None:
                self.hub.user_broadcast(channel.topic_key, msg.user_broadcast, sender=channel)
            else:
                self.hub.broadcast(channel.topic_key, payload, sender=channel)
            if channel.config.ack:
                self.enqueue(codec.ok(msg.topic, msg.ref, None, join_ref))
        elif event == "presence":
            self.enqueue(codec.reply(msg.topic, msg.ref, self._presence(channel, payload), {}, join_ref))
        elif event == "access_token":
            self._refresh_token(channel, payload.get("access_token"))
        else:
            log.debug("realtime: unexpected event %r on %s ignored", event[:64], channel.topic[:128])

    def _presence(self, channel: Channel, payload: dict[str, Any]) -> str:
        kind = payload.get("event")
        if not isinstance(kind, str):
            return "error"
        if not channel.may_track:
            return "ok"  # a private channel without a presence INSERT policy: ignored, as Realtime ignores it
        if kind.lower() == "track":
            fields = payload.get("payload", {})
            if not isinstance(fields, dict):
                return "error"
            if not channel.presence_enabled:
                channel.presence_enabled = True  # tracking turns presence on for this channel
                if channel.presence_readable:
                    self.enqueue(self.hub.presence_state(channel))
            self.hub.track(channel, fields)
            return "ok"
        if kind.lower() == "untrack":
            self.hub.untrack(channel)
            return "ok"
        return "error"

    def _refresh_token(self, channel: Channel, token: Any) -> None:
        """`access_token` push: no reply; a bad token shuts the channel (RealtimeChannel.handle_in)."""
        if not isinstance(token, str) or not token or token == channel.token or token.startswith("sb_"):
            return
        checked = tokens.check(token, self.secret)
        if isinstance(checked, tokens.Rejected):
            self.shutdown(channel, checked.join_reason.partition(": ")[2])
            return
        if channel.config.private:
            self._pending = self._loop.create_task(self._reauthorize(channel, token, checked))
            return
        self.hub.reindex(channel, lambda: channel.switch_identity(token, checked))
        self._schedule_token_check(channel)

    async def _reauthorize(self, channel: Channel, token: str, claims: Claims) -> None:
        """A private channel's new token: its policies are checked again, and a refusal shuts the channel."""
        try:
            found = await authorization.check_join(self.db, channel.sub_topic, claims.raw)
        except authorization.Refused as exc:
            if self.channels.get(channel.topic) is channel:
                self.shutdown(channel, exc.message)
            return
        if self.channels.get(channel.topic) is not channel:
            return
        channel.permissions = found
        self.hub.reindex(channel, lambda: channel.switch_identity(token, claims))
        self._schedule_token_check(channel)

    def _schedule_token_check(self, channel: Channel) -> None:
        if channel.expiry_timer is not None:
            channel.expiry_timer.cancel()
        delay_s = min(self.hub.settings.token_recheck_s, max(tokens.seconds_left(channel.claims), 0.0) + 0.01)
        channel.expiry_timer = self._loop.call_later(delay_s, self._check_token, channel)

    def _check_token(self, channel: Channel) -> None:
        channel.expiry_timer = None
        if self.channels.get(channel.topic) is not channel:
            return
        left_s = tokens.seconds_left(channel.claims)
        if left_s > 0:
            self._schedule_token_check(channel)
            return
        self.shutdown(channel, f"Token has expired {int(-left_s)} seconds ago")

    def shutdown(self, channel: Channel, message: str) -> None:
        """Stop a channel from the server side: a system error, then phx_close (shutdown_response)."""
        self._remove(channel)
        self.enqueue(self.codec.system(channel.topic, "system", "error", message, channel.join_ref))
        self.enqueue(self.codec.close(channel.topic, channel.join_ref))

    def _remove(self, channel: Channel) -> None:
        if self.channels.get(channel.topic) is channel:
            del self.channels[channel.topic]
        self.hub.remove_channel(channel)
