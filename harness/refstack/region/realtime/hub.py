"""All of a region's Realtime connections and channels: the indexes, postgres_changes fan-out, broadcast, presence.

postgres_changes fan-out, per batch of decoded changes (wal.py feeds it):

    changes ─► per change, the channels of its table whose bindings match (event, filter)
            ─► DELETE: every one of them; INSERT/UPDATE: grouped by (table, identity at the commit) into checks,
               all answered by one visibility.visible statement for the whole batch
            ─► per change in commit order, the event frame, serialized once, queued on each allowed socket
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.model import hop_counts as hc
from harness.model.keys import Claims
from harness.refstack.region.database import API_ROLES
from harness.refstack.region.realtime import frames
from harness.refstack.region.realtime.catalog import Catalog
from harness.refstack.region.realtime.changes import Change
from harness.refstack.region.realtime.channel import Channel, TableKey
from harness.refstack.region.realtime.codec import Codec
from harness.refstack.region.realtime.frames import UserBroadcast
from harness.refstack.region.realtime.peer import Peer
from harness.refstack.region.realtime.presence import RawState, TopicPresence
from harness.refstack.region.realtime.visibility import Check, claims_json

log = logging.getLogger(__name__)

VisibilityCheck = Callable[[list[Check]], Awaitable[list[set[int]]]]
"""Checks (rows of a table, as one identity) → per check, the indexes of the rows that identity may see."""


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
    """Channels subscribed to one table. A channel whose every binding on the table filters `column=eq.value` is
    found by that value (a change looks up only the channels of its row's value); the others are looked at for
    every change of the table."""

    def __init__(self) -> None:
        self.by_value: defaultdict[tuple[str, Any], set[Channel]] = defaultdict(set)
        self.others: set[Channel] = set()
        self.entries: dict[Channel, tuple[tuple[str, Any], ...] | None] = {}
        """Where each channel is indexed: its (column, value) keys, or None for `others`."""
        self.normalisers: dict[str, tuple[Callable[[Any], Any], int]] = {}
        """For each indexed column: how to make a row's value comparable, and how many keys use it."""

    @property
    def size(self) -> int:
        """Channels indexed here (the fan-out's "anyone listening?" check is O(1))."""
        return len(self.entries)

    def add(self, channel: Channel, table: TableKey) -> None:
        if channel in self.entries:
            return
        keys = _eq_keys(channel, table)
        self.entries[channel] = keys
        if keys is None:
            self.others.add(channel)
            return
        for column, value in keys:
            self.by_value[(column, value)].add(channel)
        for column, normalise in {k[0]: _normaliser(channel, table, k[0]) for k in keys}.items():
            _, uses = self.normalisers.get(column, (normalise, 0))
            self.normalisers[column] = (normalise, uses + 1)

    def discard(self, channel: Channel) -> None:
        if channel not in self.entries:
            return
        keys = self.entries.pop(channel)
        if keys is None:
            self.others.discard(channel)
            return
        for key in keys:
            members = self.by_value.get(key)
            if members is not None:
                members.discard(channel)
                if not members:
                    del self.by_value[key]
        for column in {k[0] for k in keys}:
            normalise, uses = self.normalisers[column]
            if uses <= 1:
                del self.normalisers[column]
            else:
                self.normalisers[column] = (normalise, uses - 1)

    def candidates(self, row: dict[str, Any]) -> Iterable[Channel]:
        """Channels that may want a change to `row` (their bindings still decide); a channel may come twice."""
        yield from self.others
        for column, (normalise, _) in self.normalisers.items():
            value = row.get(column)
            if value is None:
                continue
            try:
                key = (column, normalise(value))
                yield from self.by_value.get(key, ())
            except (ValueError, TypeError):
                continue


def _eq_keys(channel: Channel, table: TableKey) -> tuple[tuple[str, Any], ...] | None:
    keys: list[tuple[str, Any]] = []
    for binding in channel.active_bindings:
        if table not in binding.tables:
            continue
        rf = binding.row_filter
        if rf is None or rf.op != "eq" or binding.event in ("DELETE", "*"):
            return None  # DELETEs reach filtered bindings too when the old row lacks the column
        try:
            hash(rf.value)
        except TypeError:
            return None
        keys.append((rf.column, rf.value))
    return tuple(keys) if keys else None


def _normaliser(channel: Channel, table: TableKey, column: str) -> Callable[[Any], Any]:
    for binding in channel.active_bindings:
        if table in binding.tables and binding.row_filter is not None and binding.row_filter.column == column:
            return binding.row_filter.normalise
    raise KeyError(column)


def _identities(change: Change, recipients: dict[Channel, list[int]]) -> dict[str, tuple[Claims, list[Channel]]]:
    """The recipients by the identity (token) each had when the change committed; roles the API never takes see
    nothing and are left out."""
    by_token: dict[str, tuple[Claims, list[Channel]]] = {}
    for channel in recipients:
        identity = channel.identity_at(change.commit_time)
        if identity is None:
            continue
        token, claims = identity
        if claims.role in API_ROLES:
            by_token.setdefault(token, (claims, []))[1].append(channel)
    return by_token


class Hub:
    def __init__(self, settings: RealtimeSettings | None = None) -> None:
        self.settings = settings or RealtimeSettings()
        self.catalog = Catalog()
        """The published tables; wal.py loads it from the database at start-up."""
        self.connections: set[Peer] = set()
        self.by_table: defaultdict[TableKey, _TableSubs] = defaultdict(_TableSubs)
        self.topics: defaultdict[tuple[bool, str], set[Channel]] = defaultdict(set)
        self.presence: defaultdict[tuple[bool, str], TopicPresence] = defaultdict(TopicPresence)
        self.dropped_slow_sockets = 0
        """Sockets dropped because their outbox overflowed (a sign the load generator cannot keep up)."""
        self.undelivered_changes = 0
        """Changes some subscribers did not get because their visibility could not be checked (logged)."""
        self.hops = hc.HopCounters()
        """Load-test messages per hop (feed, fanout; connections count written and drops): GET /_admin/hops."""
        self.fault: hc.Fault | None = hc.Fault.from_env()
        """Test hook: drop every n-th load-test message at one hop (HARNESS_FAULT_DROP_HOP, POST /_admin/hops)."""

    # -- registry -----------------------------------------------------------------------------------------------
    def add_channel(self, channel: Channel) -> None:
        self.topics[channel.topic_key].add(channel)
        self._index(channel)

    def _index(self, channel: Channel) -> None:
        for table in {t for b in channel.active_bindings for t in b.tables}:
            self.by_table[table].add(channel, table)

    def _unindex(self, channel: Channel) -> None:
        for table in {t for b in channel.active_bindings for t in b.tables}:
            subs = self.by_table.get(table)
            if subs is not None:
                subs.discard(channel)

    def reindex(self, channel: Channel, update: Any) -> None:
        """Apply `update()` (which may change the channel's claims) while keeping the indexes right."""
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

    def listening(self) -> bool:
        """Some channel wants postgres_changes of some table (the change feed may poll slowly when none does)."""
        return any(subs.size for subs in self.by_table.values())

    def _joined(self, channel: Channel) -> bool:
        return channel in self.topics.get(channel.topic_key, ())

    # -- postgres_changes -----------------------------------------------------------------------------------------
    def recipients(self, change: Change) -> dict[Channel, list[int]]:
        """Channels whose bindings want the change (event and filter), with the binding ids each one matched."""
        subs = self.by_table.get((change.relation.schema, change.relation.name))
        if subs is None or not subs.size:
            return {}
        row = change.row
        table = (change.relation.schema, change.relation.name)
        found: dict[Channel, list[int]] = {}
        for channel in subs.candidates(row):
            if channel in found or channel.joined_at > change.commit_time:
                continue  # seen already, or joined after the commit: subscribers get what commits once they are
            if ids := channel.ids_for(table, change.type, row):
                found[channel] = ids
        return found

    async def publish(self, changes: Sequence[Change], check: VisibilityCheck, decoded_s: float | None = None) -> None:
        """Deliver committed changes, in order, to the channels allowed to see them, once each. `decoded_s`: when
        the feed decoded them (Unix s), stamped on load-test frames."""
        feed_ms = (time.time() if decoded_s is None else decoded_s) * 1000.0
        marks = self._count_feed(changes)
        if marks is not None:
            kept = [(c, m) for c, m in zip(changes, marks, strict=True) if m is not False]
            changes, marks = [c for c, _ in kept], [m for _, m in kept]
        plans = [(change, self.recipients(change)) for change in changes]
        checks: dict[tuple[int, str], Check] = {}
        asked: list[list[tuple[Check, int, list[Channel]]]] = [[] for _ in plans]
        """Per change: (check, row index in it, channels that identity stands for)."""
        for n, (change, recipients) in enumerate(plans):
            if not recipients or change.type == "DELETE":
                continue  # a DELETE carries only the old key and goes to every subscriber, as on Supabase
            for token, (claims, channels) in _identities(change, recipients).items():
                group = checks.get((change.relation.oid, token))
                if group is None:
                    group = checks[(change.relation.oid, token)] = Check(change.relation, claims_json(claims.raw))
                group.rows.append(change.key_text)
                asked[n].append((group, len(group.rows) - 1, channels))
        seen: dict[int, set[int]] = {}
        if checks:
            try:
                answers = await check(list(checks.values()))
                seen = {id(group): rows for group, rows in zip(checks.values(), answers, strict=True)}
            except Exception as exc:  # the database went away (restart, failback): say what was not delivered
                self.undelivered_changes += sum(1 for a in asked if a)
                log.warning("realtime: %d change(s) not delivered to RLS-checked subscribers: visibility check "
                            "failed: %r", sum(1 for a in asked if a), exc)  # fmt: skip
        fanout_ms = time.time() * 1000.0
        for n, ((change, recipients), questions) in enumerate(zip(plans, asked, strict=True)):
            if not recipients:
                continue
            if change.type != "DELETE":
                allowed = [c for group, row, chans in questions if row in seen.get(id(group), ()) for c in chans]
                recipients = {channel: recipients[channel] for channel in allowed}
            if not recipients:
                continue
            data_json = change.data_json()
            mark = marks[n] if marks is not None else None
            if isinstance(mark, tuple):
                self._fan_out_stamped(change, recipients, data_json, mark, feed_ms, fanout_ms)
                continue
            for channel, ids in recipients.items():
                if self._joined(channel):
                    channel.conn.enqueue(
                        f'{channel.pg_prefix}{frames.dumps(ids)},"data":{data_json}{channel.pg_suffix}'
                    )

    def _count_feed(self, changes: Sequence[Change]) -> list[tuple[str, str] | bool] | None:
        """Per change: (bucket key, sender) of a load-test INSERT, False for one the feed fault drops, True for any
        other; None when the batch holds no load-test message (the common case costs one dict look-up per row)."""
        marks: list[tuple[str, str] | bool] | None = None
        for n, change in enumerate(changes):
            if change.type != "INSERT":
                continue
            found = hc.envelope_key(change.record)
            if found is None:
                continue
            if marks is None:
                marks = [True] * len(changes)
            key = found[0]
            if self.fault is not None and self.fault.drop(hc.FEED):
                self.hops.add(key, hc.FAULT_DROPPED)
                marks[n] = False
                continue
            self.hops.add(key, hc.FEED)
            marks[n] = (key, found[1])
        return marks

    def _fan_out_stamped(
        self,
        change: Change,
        recipients: dict[Channel, list[int]],
        data_json: str,
        mark: tuple[str, str],
        feed_ms: float,
        fanout_ms: float,
    ) -> None:
        """A load-test message: stamped frames (counted) to everyone but the sender, who gets the plain frame."""
        key, sender = mark
        commit_ms = change.commit_time.timestamp() * 1000.0
        stamped = hc.stamp_json(key, commit_ms, feed_ms, fanout_ms) + data_json[1:]
        hops, fault = self.hops, self.fault
        for channel, ids in recipients.items():
            if not self._joined(channel):
                continue
            if channel.claims.sub == sender:
                channel.conn.enqueue(f'{channel.pg_prefix}{frames.dumps(ids)},"data":{data_json}{channel.pg_suffix}')
                continue
            if fault is not None and fault.drop(hc.FANOUT):
                hops.add(key, hc.FAULT_DROPPED)
                continue
            hops.add(key, hc.FANOUT)
            channel.conn.enqueue(f'{channel.pg_prefix}{frames.dumps(ids)},"data":{stamped}{channel.pg_suffix}', key)

    # -- broadcast ------------------------------------------------------------------------------------------------
    def broadcast(self, key: tuple[bool, str], payload: dict[str, Any], sender: Channel | None = None) -> int:
        """Push a broadcast to the topic's channels (not to `sender` unless it asked for `self`); returns count."""
        payload_json = frames.dumps(payload)
        return self._fastlane(key, sender, lambda codec: codec.fastlane(key[1], "broadcast", payload_json))

    def user_broadcast(self, key: tuple[bool, str], message: UserBroadcast, sender: Channel | None = None) -> int:
        """A broadcast whose payload is bytes (a vsn 2.0.0 binary push, or the REST API's single broadcast): a
        binary frame on vsn 2.0.0 sockets; on vsn 1.0.0 ones a JSON broadcast if the bytes are JSON, else none."""
        return self._fastlane(key, sender, lambda codec: codec.user_broadcast(key[1], message))

    def _fastlane(
        self, key: tuple[bool, str], sender: Channel | None, build: Callable[[Codec], str | bytes | None]
    ) -> int:
        """Send one message to a topic's channels, serialized once per serializer (MessageDispatcher's cache)."""
        channels = self.topics.get(key)
        if not channels:
            return 0
        built: dict[Codec, str | bytes | None] = {}
        sent = 0
        for channel in list(channels):
            if channel is sender and not channel.config.self_broadcast:
                continue
            codec = channel.conn.codec
            if codec not in built:
                built[codec] = build(codec)
            frame = built[codec]
            if frame is not None:
                channel.conn.enqueue(frame)
                sent += 1
        return sent

    # -- presence -------------------------------------------------------------------------------------------------
    def presence_state(self, channel: Channel) -> str:
        state = self.presence[channel.topic_key].state() if channel.topic_key in self.presence else {}
        return channel.conn.codec.push(channel.topic, "presence_state", frames.dumps(state), channel.join_ref)

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
        diff = frames.dumps({"joins": joins, "leaves": leaves})
        built: dict[Codec, str] = {}
        for channel in list(self.topics.get(key, ())):
            if channel.presence_enabled and channel.presence_readable:
                codec = channel.conn.codec
                if codec not in built:
                    built[codec] = codec.fastlane(key[1], "presence_diff", diff)
                channel.conn.enqueue(built[codec])
