"""Phoenix frames, parsing and the helpers both serializers share (the serializers are in codec.py).

vsn 1.0.0: JSON objects `{"topic","event","payload","ref"}` out, and `join_ref` too on the way in. Outbound frames
never carry `join_ref` (docs/protocols.md §4): realtime-py validates every frame with strict pydantic models, and
pushed events (broadcast, postgres_changes, presence, system) must have `ref: null`.
vsn 2.0.0: JSON arrays `[join_ref, ref, topic, event, payload]` both ways, plus Realtime's binary user broadcasts.
Frames are built as strings so a fan-out can serialize a payload once per serializer and reuse it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.model import strict_json

PHOENIX_TOPIC = "phoenix"
TOPIC_PREFIX = "realtime:"
MAX_DEPTH = 100
"""Deepest JSON nesting accepted in a frame (and sent on in a record): deeper values would overflow Python's
recursion limit when the payload is encoded again for other sockets, a few levels further down."""


def dumps(value: Any) -> str:
    """Compact JSON, the way Phoenix's Jason encodes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True if `value` nests lists and objects deeper than `limit` (iterative: no recursion to overflow)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


@dataclass(frozen=True)
class Inbound:
    """A client frame that has the Phoenix shape; anything else is refused before it reaches a channel."""

    topic: str
    event: str
    payload: dict[str, Any]
    ref: str | None
    join_ref: str | None
    user_broadcast: UserBroadcast | None = None
    """A vsn 2.0.0 binary broadcast push (event "broadcast"); `payload` is then empty."""


@dataclass(frozen=True)
class UserBroadcast:
    """A broadcast whose payload travels as bytes (RealtimeWeb.Socket.UserBroadcast): pushed by a vsn 2.0.0 client
    in a binary frame, or sent through the REST API. `json` says the bytes are a JSON text (else opaque bytes,
    which vsn 1.0.0 sockets cannot carry: they do not get it)."""

    event: str
    data: bytes
    json: bool

    def as_json_payload(self) -> str | None:
        """The vsn 1.0.0 form (UserBroadcast.convert_to_json_broadcast), or None for a binary payload."""
        if not self.json:
            return None
        return f'{{"event":{dumps(self.event)},"payload":{self.data.decode()},"type":"broadcast"}}'


class FrameError(ValueError):
    """A client frame refused, with where to answer: `topic` (and `ref`) when the frame still names a topic an
    error reply can go to, else None: nothing to answer on, so the socket closes (Phoenix's socket process dies on a
    frame it cannot decode, and the client sees its socket go)."""

    def __init__(self, reason: str, topic: str | None = None, ref: str | None = None) -> None:
        super().__init__(reason)
        self.topic = topic
        self.ref = ref


def _ref(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError("ref must be a string, an integer or null")


_ADDRESS = frozenset({"topic", "ref"})


def _reply_address(text: str) -> tuple[str | None, str | None]:
    """The topic and ref of a frame the strict reader refused for what its payload holds (NaN, a lone surrogate,
    depth), when both are strict JSON an error reply can carry; (None, None) otherwise."""
    members = strict_json.top_level_members(text, _ADDRESS)
    topic = members.get("topic")
    try:
        ref = _ref(members.get("ref"))
    except ValueError:
        return None, None
    return (topic, ref) if isinstance(topic, str) else (None, None)


def _strict(text: str, address: Callable[[str], tuple[str | None, str | None]]) -> Any:
    try:
        return strict_json.loads(text, max_depth=MAX_DEPTH)
    except strict_json.JsonBodyError as exc:
        topic, ref = (None, None) if exc.reason in ("syntax", "not_utf8") else address(text)
        raise FrameError(f"frame is not JSON this server takes: {exc.message}", topic, ref) from None


def _inbound(topic: Any, event: Any, payload: Any, ref: Any, join_ref: Any) -> Inbound:
    if not isinstance(topic, str) or not isinstance(event, str):
        raise FrameError("topic and event must be strings")
    try:
        ref, join_ref = _ref(ref), _ref(join_ref)
    except ValueError as exc:
        raise FrameError(str(exc)) from None
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise FrameError("payload must be a JSON object", topic, ref)
    return Inbound(topic, event, payload, ref, join_ref)


def parse_v1(text: str) -> Inbound:
    """Parse one vsn 1.0.0 text frame (strictly: harness/model/strict_json.py); FrameError when it is not a vsn 1.0.0
    message this server takes. A lone surrogate could not be carried on to other sockets as UTF-8, NaN and
    Infinity would reach them as invalid JSON, and nesting deeper than MAX_DEPTH would overflow re-encoding."""
    data = _strict(text, _reply_address)
    if not isinstance(data, dict):
        raise FrameError("frame is not a JSON object (vsn 1.0.0 frames are {topic, event, payload, ref})")
    return _inbound(
        data.get("topic"), data.get("event"), data.get("payload", {}), data.get("ref"), data.get("join_ref")
    )


def _array_address(text: str) -> tuple[str | None, str | None]:
    """Topic and ref of a vsn 2.0.0 frame refused for what its payload holds, read leniently (None, None if not)."""
    try:
        data = json.loads(text)
        topic, ref = data[2], _ref(data[1])
    except (ValueError, RecursionError, TypeError, KeyError, IndexError):
        return None, None
    return (topic, ref) if isinstance(topic, str) else (None, None)


def parse_v2(text: str) -> Inbound:
    """Parse one vsn 2.0.0 text frame `[join_ref, ref, topic, event, payload, …]` (V2Serializer.decode_text:
    anything else makes Phoenix drop the socket), with the same strictness as parse_v1."""
    data = _strict(text, _array_address)
    if not isinstance(data, list) or len(data) < 5:
        raise FrameError("frame is not a vsn 2.0.0 array [join_ref, ref, topic, event, payload]")
    join_ref, ref, topic, event, payload = data[:5]
    return _inbound(topic, event, payload, ref, join_ref)


USER_BROADCAST_PUSH = 3
"""The only binary frame kind a client sends that Realtime serves (V2Serializer, user_broadcast_push)."""


def parse_v2_binary(data: bytes) -> Inbound:
    """A vsn 2.0.0 binary frame: kind 3, user broadcast push, is
    `<<3, join_ref_size, ref_size, topic_size, event_size, metadata_size, encoding, join_ref, ref, topic,
    user_event, metadata, payload>>` (encoding 1 = JSON, 0 = bytes). Others close the socket, as a frame Phoenix
    cannot decode does; a JSON payload that is not strict JSON is refused with an error reply."""
    if len(data) < 7 or data[0] != USER_BROADCAST_PUSH:
        kind = data[0] if data else None
        raise FrameError(f"binary frame of kind {kind} is not served (vsn 2.0.0 clients push kind 3 broadcasts)")
    sizes, offset, parts = data[1:6], 7, []
    for size in sizes:
        parts.append(data[offset : offset + size])
        offset += size
    if offset > len(data):
        raise FrameError("binary frame is shorter than its header says")
    try:
        join_ref, ref, topic, event, metadata = (part.decode("utf-8") for part in parts)
    except UnicodeDecodeError:
        raise FrameError("binary frame: join_ref, ref, topic, event and metadata must be UTF-8") from None
    body, is_json = data[offset:], data[6] != 0
    if is_json or metadata:
        try:
            for text in (body.decode("utf-8") if is_json else "null", metadata or "null"):
                strict_json.loads(text, max_depth=MAX_DEPTH)
        except (UnicodeDecodeError, strict_json.JsonBodyError) as exc:
            raise FrameError(f"binary broadcast is not JSON this server takes: {exc}", topic, ref or None) from None
    user = UserBroadcast(event, bytes(body), is_json)
    return Inbound(topic, "broadcast", {}, ref or None, join_ref or None, user)
