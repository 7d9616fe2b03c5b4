"""Phoenix vsn 1.0.0 frames: JSON objects `{"topic","event","payload","ref"}` out, and `join_ref` too on the way in.

Outbound frames never carry `join_ref` (PROTOCOLS.md §4.1): realtime-py validates every frame with strict pydantic
models, and pushed events (broadcast, postgres_changes, presence, system) must have `ref: null`. Frames are built
as strings so a fan-out can serialize a payload once and reuse it for every subscriber.
"""

from __future__ import annotations

import json
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


def frame(topic: str, event: str, payload_json: str, ref: str | None = None) -> str:
    """One outbound frame around an already-serialized payload."""
    return f'{{"topic":{dumps(topic)},"event":{dumps(event)},"payload":{payload_json},"ref":{dumps(ref)}}}'


def reply(topic: str, ref: str | None, status: str, response: dict[str, Any]) -> str:
    return frame(topic, "phx_reply", dumps({"status": status, "response": response}), ref)


def ok(topic: str, ref: str | None, response: dict[str, Any] | None = None) -> str:
    return reply(topic, ref, "ok", response or {})


def error(topic: str, ref: str | None, reason: str) -> str:
    return reply(topic, ref, "error", {"reason": reason})


def system(topic: str, extension: str, status: str, message: str) -> str:
    """A `system` push; `channel` is the sub-topic (without `realtime:`), as Realtime sends it."""
    channel = topic.removeprefix(TOPIC_PREFIX)
    payload = {"channel": channel, "extension": extension, "status": status, "message": message}
    return frame(topic, "system", dumps(payload))


def close(topic: str, join_ref: str | None) -> str:
    return frame(topic, "phx_close", "{}", join_ref)


@dataclass(frozen=True)
class Inbound:
    """A client frame that has the Phoenix shape; anything else is refused before it reaches a channel."""

    topic: str
    event: str
    payload: dict[str, Any]
    ref: str | None
    join_ref: str | None


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


def parse(text: str) -> Inbound:
    """Parse one text frame (strictly: harness/model/strict_json.py); FrameError when it is not a vsn 1.0.0
    message this server takes. A lone surrogate could not be carried on to other sockets as UTF-8, NaN and
    Infinity would reach them as invalid JSON, and nesting deeper than MAX_DEPTH would overflow re-encoding."""
    try:
        data = strict_json.loads(text, max_depth=MAX_DEPTH)
    except strict_json.JsonBodyError as exc:
        topic, ref = (None, None) if exc.reason in ("syntax", "not_utf8") else _reply_address(text)
        raise FrameError(f"frame is not JSON this server takes: {exc.message}", topic, ref) from None
    if not isinstance(data, dict):
        raise FrameError("frame is not a JSON object (vsn 1.0.0 frames are {topic, event, payload, ref})")
    topic, event, payload = data.get("topic"), data.get("event"), data.get("payload", {})
    if not isinstance(topic, str) or not isinstance(event, str):
        raise FrameError("topic and event must be strings")
    try:
        ref, join_ref = _ref(data.get("ref")), _ref(data.get("join_ref"))
    except ValueError as exc:
        raise FrameError(str(exc)) from None
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise FrameError("payload must be a JSON object", topic, ref)
    return Inbound(topic, event, payload, ref, join_ref)
