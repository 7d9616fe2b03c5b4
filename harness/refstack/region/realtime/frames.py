"""Phoenix vsn 1.0.0 frames: JSON objects `{"topic","event","payload","ref"}` out, and `join_ref` too on the way in.

Outbound frames never carry `join_ref` (PROTOCOLS.md §4.1): realtime-py validates every frame with strict pydantic
models, and pushed events (broadcast, postgres_changes, presence, system) must have `ref: null`. Frames are built
as strings so a fan-out can serialize a payload once and reuse it for every subscriber.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PHOENIX_TOPIC = "phoenix"
TOPIC_PREFIX = "realtime:"


def dumps(value: Any) -> str:
    """Compact JSON, the way Phoenix's Jason encodes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


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
