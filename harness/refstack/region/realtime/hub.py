"""The region's Realtime hub: every connection, every joined channel, and the fan-out of changes to them.

    Database commit ──listener──► Hub.on_change ──(table index, members of the row's conversation)──► channels
                                        │ serialize `data` once per change                  │ rls.can_read
                                        ▼                                                   ▼
                                  Connection.enqueue(frame)  ── bounded outbox ──► writer task ──► websocket

The fan-out runs inside the database writer's call, so it never awaits: it appends a ready string to each
receiving socket's outbox. Subscriptions are indexed by table and, for the conversation-scoped tables, by user:
an insert into `messages` looks at the channels of the conversation's members only, not at every subscriber.
`rls.can_read` stays the authority on who may see a row; the index only narrows the candidates.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.refstack.region import rls
from harness.refstack.region.db import Change, pg_type_name
from harness.refstack.region.membership import Membership
from harness.refstack.region.realtime import frames
from harness.refstack.region.realtime.channel import Channel
from harness.refstack.region.realtime.peer import Peer
from harness.refstack.region.realtime.presence import RawState, TopicPresence
from harness.refstack.region.schema import PUBLIC_TABLES, TABLES

log = logging.getLogger(__name__)

# Tables whose rows are visible to the members of one conversation, and the column naming it.
_CONVERSATION_COLUMN = {"messages": "conversation_id", "conversation_members": "conversation_id", "conversations": "id"}


@dataclass
class RealtimeSettings:
    idle_timeout_s: float = 60.0
    """Close a socket that sent nothing for this long (Phoenix's websocket timeout; clients heartbeat every 25 s)."""
    max_queued_frames: int = 1000
    """Frames waiting for a slow socket before it is dropped, so one stuck client cannot grow server memory."""
    max_frame_bytes: int = 1024 * 1024
    """Largest inbound frame; bigger ones close the socket with 1009 (message too big)."""
    close_timeout_s: float = 2.0
    """How long a server-initiated close waits for the client's close frame."""
    token_recheck_s: float = 300.0
    """Channel tokens are re-checked every min(this, time to exp) (Realtime's @confirm_token_ms_interval)."""


class _TableSubs:
    """Channels subscribed to one table: by user id when their claims name one, else in `others`."""

    def __init__(self) -> None:
        self.by_user: defaultdict[str, set[Channel]] = defaultdict(set)
        self.others: set[Channel] = set()
        self.size = 0
        """Channels indexed here, kept as a counter so the fan-out's "anyone listening?" check is O(1)."""

    def add(self, channel: Channel) -> None:
        uid = channel.user_id
        target = self.others if uid is None else self.by_user[uid]
        before = len(target)
        target.add(channel)
        self.size += len(target) - before

    def discard(self, channel: Channel) -> None:
        uid = channel.user_id
        target = self.others if uid is None else self.by_user.get(uid)
        if target is None or channel not in target:
            return
        target.discard(channel)
        self.size -= 1
        if uid is not None and not target:
            del self.by_user[uid]

    def candidates(self, user_ids: Iterable[str] | None) -> Iterable[Channel]:
        """Channels that could see the row: of the given users (None = everyone) and the non-user ones."""
        yield from self.others
        if user_ids is None:
            for channels in self.by_user.values():
                yield from channels
        else:
            for uid in user_ids:
                yield from self.by_user.get(uid, ())


def commit_timestamp(stored: str) -> str:
    """`2024-05-01T10:00:00.123456+00:00` → `2024-05-01T10:00:00.123Z` (Realtime's wire form)."""
    try:
        moment = dt.datetime.fromisoformat(stored.replace("Z", "+00:00")).astimezone(dt.UTC)
    except ValueError:
        return stored
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_COLUMNS_JSON = {
    name: frames.dumps([{"name": c.name, "type": pg_type_name(c)} for c in TABLES[name].columns])
    for name in PUBLIC_TABLES
}


def change_data_json(change: Change) -> str:
    """The `data` object of a postgres_changes event, serialized (once per change)."""
    table = TABLES[change.table]
    parts = [
        '{"schema":"public","table":',
        frames.dumps(change.table),
        ',"commit_timestamp":',
        frames.dumps(commit_timestamp(change.commit_timestamp)),
        ',"type":',
        frames.dumps(change.type),
        ',"columns":',
        _COLUMNS_JSON[change.table],
    ]
    if change.record is not None:
        parts += [',"record":', frames.dumps(change.record)]
    if change.old_record is not None and change.type != "INSERT":
        # Without REPLICA IDENTITY FULL, Postgres ships only the primary key of the old row.
        old = {k: change.old_record.get(k) for k in table.primary_key}
        parts += [',"old_record":', frames.dumps(old)]
    parts.append(',"errors":null}')
    return "".join(parts)


class Hub:
    def __init__(self, membership: Membership, settings: RealtimeSettings | None = None) -> None:
        self.settings = settings or RealtimeSettings()
        self.membership = membership
        self.connections: set[Peer] = set()
        self.by_table: dict[str, _TableSubs] = {name: _TableSubs() for name in PUBLIC_TABLES}
        self.topics: defaultdict[tuple[bool, str], set[Channel]] = defaultdict(set)
        self.presence: defaultdict[tuple[bool, str], TopicPresence] = defaultdict(TopicPresence)
        self.dropped_slow_sockets = 0
        """Sockets dropped because their outbox overflowed (a sign the load generator cannot keep up)."""

    # -- registry -----------------------------------------------------------------------------------------------
    def add_channel(self, channel: Channel) -> None:
        self.topics[channel.topic_key].add(channel)
        self._index(channel)

    def _index(self, channel: Channel) -> None:
        for table in {t for b in channel.active_bindings for t in b.tables}:
            self.by_table[table].add(channel)

    def _unindex(self, channel: Channel) -> None:
        for table in {t for b in channel.active_bindings for t in b.tables}:
            self.by_table[table].discard(channel)

    def reindex(self, channel: Channel, update: Any) -> None:
        """Apply `update()` (which may change the channel's claims) while keeping the user index right."""
        self._unindex(channel)
        update()
        self._index(channel)

    def remove_channel(self, channel: Channel) -> None:
        self._unindex(channel)
        key = channel.topic_key
        members = self.topics.get(key)
        if members is not None:
            members.discard(channel)
            if not members:
                del self.topics[key]
        self.untrack(channel)
        if channel.expiry_timer is not None:
            channel.expiry_timer.cancel()
            channel.expiry_timer = None

    def channel_count(self) -> int:
        return sum(len(c) for c in self.topics.values())

    # -- postgres_changes -----------------------------------------------------------------------------------------
    def on_change(self, change: Change) -> None:
        """Database listener: deliver one committed change to every channel allowed to see it, once each."""
        try:
            self._fan_out(change)
        except Exception:  # the write is committed: never fail it, nor starve the listeners after this one
            log.exception("realtime: fan-out of change %d on %s failed", change.seq, change.table)

    def _fan_out(self, change: Change) -> None:
        subs = self.by_table.get(change.table)
        if subs is None or not subs.size:
            return
        row = change.record if change.record is not None else change.old_record
        if row is None:
            return
        column = _CONVERSATION_COLUMN.get(change.table)
        users = self.membership.members_of(str(row.get(column))) if column is not None else None
        data_json: str | None = None
        for channel in list(subs.candidates(users)):
            ids = channel.ids_for(change.table, change.type, row)
            if not ids or not rls.can_read(channel.claims, change.table, row, self.membership):
                continue
            if data_json is None:
                data_json = change_data_json(change)
            channel.conn.enqueue(f'{channel.pg_prefix}{frames.dumps(ids)},"data":{data_json}}}}}')

    # -- broadcast ------------------------------------------------------------------------------------------------
    def broadcast(self, key: tuple[bool, str], payload: dict[str, Any], sender: Channel | None = None) -> int:
        """Push a broadcast to the topic's channels (not to `sender` unless it asked for `self`); returns count."""
        channels = self.topics.get(key)
        if not channels:
            return 0
        text = frames.frame(key[1], "broadcast", frames.dumps(payload))
        sent = 0
        for channel in list(channels):
            if channel is sender and not channel.config.self_broadcast:
                continue
            channel.conn.enqueue(text)
            sent += 1
        return sent

    # -- presence -------------------------------------------------------------------------------------------------
    def presence_state(self, channel: Channel) -> str:
        state = self.presence[channel.topic_key].state() if channel.topic_key in self.presence else {}
        return frames.frame(channel.topic, "presence_state", frames.dumps(state))

    def track(self, channel: Channel, fields: dict[str, Any]) -> None:
        joins, leaves = self.presence[channel.topic_key].track(channel, fields)
        self._presence_diff(channel.topic_key, joins, leaves)

    def untrack(self, channel: Channel) -> None:
        topic = self.presence.get(channel.topic_key)
        if topic is None:
            return
        leaves = topic.untrack(channel)
        if not topic.entries:
            del self.presence[channel.topic_key]
        if leaves:
            self._presence_diff(channel.topic_key, {}, leaves)

    def _presence_diff(self, key: tuple[bool, str], joins: RawState, leaves: RawState) -> None:
        text = frames.frame(key[1], "presence_diff", frames.dumps({"joins": joins, "leaves": leaves}))
        for channel in list(self.topics.get(key, ())):
            if channel.presence_enabled:
                channel.conn.enqueue(text)
