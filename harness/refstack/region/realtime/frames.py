"""Phoenix vsn 1.0.0 frames: JSON objects `{"topic","event","payload","ref"}` out, and `join_ref` too on the way in.

Outbound frames never carry `join_ref` (PROTOCOLS.md §4.1): realtime-py validates every frame with strict pydantic
models, and pushed events (broadcast, postgres_changes, presence, system) must have `ref: null`. Frames are built
as strings so a fan-out can serialize a payload once and reuse it for every subscriber.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

PHOENIX_TOPIC = "phoenix"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
"""A \\uD800-\\uDFFF escape: a surrogate, which is only text as half of a pair."""
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


def _bracket_count(text: str) -> int:
    return text.count("[") + text.count("{")


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
    """A client frame that has the Phoenix shape; anything else is dropped before it reaches a channel."""

    topic: str
    event: str
    payload: dict[str, Any]
    ref: str | None
    join_ref: str | None


def _ref(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError("ref must be a string, an integer or null")


def parse(text: str) -> Inbound:
    """Parse one text frame; ValueError (with a reason) when it is not a vsn 1.0.0 message."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError("frame is not JSON") from exc
    if _bracket_count(text) > MAX_DEPTH and too_deep(data):  # counting is C-fast; most frames stop there
        raise ValueError(f"frame nests JSON deeper than {MAX_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(text):
        # A lone surrogate parses in Python but is not Unicode text: no UTF-8 frame can carry it on to other
        # sockets. Phoenix's JSON decoder refuses it; so do we, before it reaches a channel.
        try:
            dumps(data).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("frame holds a lone surrogate escape (not Unicode text)") from None
    if not isinstance(data, dict):
        raise ValueError("frame is not a JSON object")
    topic, event, payload = data.get("topic"), data.get("event"), data.get("payload", {})
    if not isinstance(topic, str) or not isinstance(event, str):
        raise ValueError("topic and event must be strings")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ValueError("payload must be a JSON object")
    return Inbound(topic, event, payload, _ref(data.get("ref")), _ref(data.get("join_ref")))
