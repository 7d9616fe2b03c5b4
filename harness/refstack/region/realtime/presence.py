"""Presence per topic: which channel tracks which metas under which key (Phoenix.Presence, one node).

Each channel tracks at most one meta under its presence key; tracking again replaces it (Presence.update), which
shows up in a diff as a leave of the old meta and a join of the new one (carrying `phx_ref_prev`).
"""

from __future__ import annotations

import itertools
from typing import Any

from harness.refstack.region.realtime.channel import Channel

Meta = dict[str, Any]
RawState = dict[str, dict[str, list[Meta]]]

_refs = itertools.count(1)


def new_ref() -> str:
    """A unique phx_ref (Phoenix uses a random base64 string; any unique string works for the clients)."""
    return f"F{next(_refs):x}"


class TopicPresence:
    def __init__(self) -> None:
        self.entries: dict[Channel, tuple[str, Meta]] = {}

    def state(self) -> RawState:
        out: RawState = {}
        for key, meta in self.entries.values():
            out.setdefault(key, {"metas": []})["metas"].append(meta)
        return out

    def track(self, channel: Channel, fields: dict[str, Any]) -> tuple[RawState, RawState]:
        """Track (or update) the channel's meta; returns the diff (joins, leaves)."""
        key = channel.config.presence_key
        meta: Meta = {**fields, "phx_ref": new_ref()}
        leaves: RawState = {}
        old = self.entries.get(channel)
        if old is not None:
            meta["phx_ref_prev"] = old[1]["phx_ref"]
            leaves = {old[0]: {"metas": [old[1]]}}
        self.entries[channel] = (key, meta)
        return {key: {"metas": [meta]}}, leaves

    def untrack(self, channel: Channel) -> RawState:
        """Forget the channel's meta; returns the leaves ({} when it tracked nothing)."""
        old = self.entries.pop(channel, None)
        return {old[0]: {"metas": [old[1]]}} if old is not None else {}
