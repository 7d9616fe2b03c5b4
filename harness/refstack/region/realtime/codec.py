"""The two Phoenix serializers a socket may pick with `?vsn=` (Phoenix.Socket.negotiate_serializer):

    ~> 1.0.0   Phoenix.Socket.V1.JSONSerializer   {"topic","event","payload","ref"} (join_ref never sent)
    ~> 2.0.0   RealtimeWeb.Socket.V2Serializer     [join_ref, ref, topic, event, payload], and binary user broadcasts

Three kinds of outbound frame, as Phoenix makes them: a reply (to a client's ref), a push from the channel (system,
presence_state, phx_close: they carry the channel's join_ref in vsn 2.0.0) and a fastlane broadcast (broadcast,
presence_diff, postgres_changes: join_ref and ref null), which the hub serializes once per serializer.
"""

from __future__ import annotations

import re
import struct
from typing import Any

from harness.refstack.region.realtime import frames
from harness.refstack.region.realtime.frames import UserBroadcast, dumps

USER_BROADCAST = 4
"""V2Serializer's kind byte for a user broadcast sent to clients."""


class Codec:
    """vsn 1.0.0; `V2` overrides what differs."""

    vsn = "1.0.0"

    def message(self, topic: str, event: str, payload_json: str, ref: str | None, join_ref: str | None) -> str:
        return f'{{"topic":{dumps(topic)},"event":{dumps(event)},"payload":{payload_json},"ref":{dumps(ref)}}}'

    def parse(self, data: str | bytes) -> frames.Inbound:
        if isinstance(data, bytes):  # Phoenix's V1 serializer decodes a frame's bytes as JSON whatever the opcode
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                raise frames.FrameError("binary frame is not UTF-8 JSON") from None
        return frames.parse_v1(data)

    def pg_parts(self, topic: str) -> tuple[str, str]:
        """What goes before the ids and after the data of a postgres_changes frame (built once per channel)."""
        return f'{{"topic":{dumps(topic)},"event":"postgres_changes","ref":null,"payload":{{"ids":', "}}"

    def user_broadcast(self, topic: str, message: UserBroadcast) -> str | bytes | None:
        """A byte-payload broadcast for this socket; None when it cannot carry it (bytes on vsn 1.0.0)."""
        payload = message.as_json_payload()
        return None if payload is None else self.fastlane(topic, "broadcast", payload)

    # -- what every serializer builds from message() -----------------------------------------------------------------
    def reply(
        self, topic: str, ref: str | None, status: str, response: dict[str, Any], join_ref: str | None = None
    ) -> str:
        return self.message(topic, "phx_reply", dumps({"status": status, "response": response}), ref, join_ref)

    def ok(
        self, topic: str, ref: str | None, response: dict[str, Any] | None = None, join_ref: str | None = None
    ) -> str:
        return self.reply(topic, ref, "ok", response or {}, join_ref)

    def error(self, topic: str, ref: str | None, reason: str, join_ref: str | None = None) -> str:
        return self.reply(topic, ref, "error", {"reason": reason}, join_ref)

    def push(self, topic: str, event: str, payload_json: str, join_ref: str | None) -> str:
        """A push from the channel process (ref null)."""
        return self.message(topic, event, payload_json, None, join_ref)

    def fastlane(self, topic: str, event: str, payload_json: str) -> str:
        return self.message(topic, event, payload_json, None, None)

    def system(self, topic: str, extension: str, status: str, message: str, join_ref: str | None) -> str:
        """A `system` push; `channel` is the sub-topic (without `realtime:`), as Realtime sends it."""
        channel = topic.removeprefix(frames.TOPIC_PREFIX)
        payload = {"channel": channel, "extension": extension, "status": status, "message": message}
        return self.push(topic, "system", dumps(payload), join_ref)

    def close(self, topic: str, join_ref: str | None) -> str:
        """phx_close: Phoenix sets both ref and join_ref to the join's ref."""
        return self.message(topic, "phx_close", "{}", join_ref, join_ref)


class V2(Codec):
    vsn = "2.0.0"

    def message(self, topic: str, event: str, payload_json: str, ref: str | None, join_ref: str | None) -> str:
        return f"[{dumps(join_ref)},{dumps(ref)},{dumps(topic)},{dumps(event)},{payload_json}]"

    def parse(self, data: str | bytes) -> frames.Inbound:
        return frames.parse_v2_binary(data) if isinstance(data, bytes) else frames.parse_v2(data)

    def pg_parts(self, topic: str) -> tuple[str, str]:
        return f'[null,null,{dumps(topic)},"postgres_changes",{{"ids":', "}]"

    def user_broadcast(self, topic: str, message: UserBroadcast) -> str | bytes | None:
        """`<<4, topic_size, event_size, metadata_size, encoding, topic, event, metadata, payload>>` (fastlane!)."""
        head, event = topic.encode(), message.event.encode()
        if len(head) > 255 or len(event) > 255:
            return None  # V2Serializer raises for these: the message reaches no vsn 2.0.0 socket
        sizes = struct.pack("!BBBBB", USER_BROADCAST, len(head), len(event), 0, 1 if message.json else 0)
        return sizes + head + event + message.data


V1_CODEC = Codec()
V2_CODEC = V2()
_VSN = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?")


def negotiate(vsn: str | None) -> Codec | None:
    """The serializer for `?vsn=` (absent: 1.0.0), as Elixir's Version.match?(vsn, "~> 1.0.0" | "~> 2.0.0") picks
    it: 1.0.x or 2.0.x (a pre-release of x.0.0 sorts before it and does not match); None for anything else (Phoenix
    then refuses the socket with 403)."""
    match = _VSN.fullmatch("1.0.0" if vsn is None else vsn)
    if match is None:
        return None
    major, minor, patch, pre = int(match.group(1)), int(match.group(2)), int(match.group(3)), match.group(4)
    if patch == 0 and pre:
        return None
    return {(1, 0): V1_CODEC, (2, 0): V2_CODEC}.get((major, minor))
