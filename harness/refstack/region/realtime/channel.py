"""One joined channel: its topic, identity (claims), join config and postgres_changes bindings.

The join config is parsed here (RealtimeWeb.Channels.Payloads.Join): `broadcast.{ack,self}`, `presence.{key,
enabled}`, `private`, `postgres_changes` (a list of bindings). Booleans also accept "true"/"false" strings.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

from harness.model.keys import Claims
from harness.refstack.region.realtime import filters, frames
from harness.refstack.region.realtime.authorization import Permissions
from harness.refstack.region.realtime.catalog import Catalog
from harness.refstack.region.realtime.peer import Peer

EVENTS = ("INSERT", "UPDATE", "DELETE", "*")
MAX_IDENTITIES = 4
"""Identities a channel remembers (token refreshes far apart: only the last matter for changes in flight)."""


class JoinPayloadError(ValueError):
    """The join payload has the wrong shape; the message names the field and the expected type."""


TableKey = tuple[str, str]
"""(schema, name) of a published table."""


@dataclass(frozen=True)
class Binding:
    """One postgres_changes subscription of a channel. `error` is set when it cannot be served."""

    id: int
    event: str
    tables: tuple[TableKey, ...]
    row_filter: filters.RowFilter | None
    echo: dict[str, Any]
    error: str | None = None

    def matches(self, kind: str, row: dict[str, Any]) -> bool:
        if self.event != "*" and self.event != kind:
            return False
        if self.row_filter is None:
            return True
        if kind == "DELETE" and self.row_filter.column not in row:
            return True  # the old row carries only its key: a DELETE goes to every subscriber of the table
        return self.row_filter.matches(row)


def binding_id(params: dict[str, Any]) -> int:
    """A stable non-zero id per binding (Realtime uses :erlang.phash2(params), 27 bits; realtime-py needs != 0)."""
    digest = zlib.crc32(frames.dumps(sorted(params.items(), key=lambda kv: kv[0])).encode()) & (2**27 - 1)
    return digest or 1


def parse_binding(params: Any, catalog: Catalog) -> Binding:
    if not isinstance(params, dict):
        raise JoinPayloadError("config.postgres_changes: each binding must be an object")
    echo = dict(params)
    ident = binding_id(params)

    def refused(reason: str) -> Binding:
        return Binding(ident, "", (), None, echo, reason)

    event = params.get("event")
    if not isinstance(event, str) or event.upper() not in EVENTS:
        return refused(f"event must be one of {', '.join(EVENTS)}, got {event!r}")
    schema = params.get("schema", "public")
    table = params.get("table")
    published = catalog.in_schema(schema) if isinstance(schema, str) else []
    if not published:
        schemas = sorted({s for s, _ in catalog.tables})
        return refused(f"schema {schema!r} is not replicated; use one of {', '.join(map(repr, schemas))}")
    names = [t.name for t in published]
    if table in (None, "*"):
        tables = tuple((t.schema, t.name) for t in published)
    elif isinstance(table, str) and table in names:
        tables = ((schema, table),)
    else:
        return refused(f"table {table!r} is not one of {', '.join(names)}")
    row_filter = None
    text = params.get("filter")
    if text is not None:
        if not isinstance(text, str) or len(tables) != 1:
            return refused("Error parsing `filter` params: a filter needs one table")
        described = catalog.table(*tables[0])
        assert described is not None
        try:
            row_filter = filters.parse(text, described)
        except filters.FilterSyntaxError as exc:
            return refused(f"Error parsing `filter` params: {exc}")
        except filters.FilterSubscribeError as exc:
            column = text.strip().partition("=")[0]
            logged = (
                f"[event: {frames.dumps(event.upper())}, schema: {frames.dumps(schema)}, table: {frames.dumps(table)}, "
                f"filters: [{{{frames.dumps(column)}, {frames.dumps(exc.op)}, {frames.dumps(exc.value)}, false}}], "
                "select: nil]"
            )
            return refused(
                "Unable to subscribe to changes with given parameters. An exception happened so please check your "
                f"connect parameters: {logged}. Exception: {exc}"
            )
        except filters.FilterError as exc:
            return refused(f"Error parsing `filter` params: {exc}")
    return Binding(ident, event.upper(), tables, row_filter, echo)


def _bool(value: Any, name: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise JoinPayloadError(f"{name}: unable to parse, expected boolean, got {value!r}")


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    section = config.get(name)
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise JoinPayloadError(f"config.{name}: unable to parse, expected a map")
    return section


@dataclass(frozen=True)
class JoinConfig:
    ack: bool = False
    self_broadcast: bool = False
    presence_key: str = ""
    presence_enabled: bool = False
    private: bool = False
    bindings: tuple[Binding, ...] = ()

    @classmethod
    def parse(cls, payload: dict[str, Any], catalog: Catalog) -> JoinConfig:
        config = payload.get("config")
        if config is None:
            return cls()
        if not isinstance(config, dict):
            raise JoinPayloadError("config: unable to parse, expected a map")
        broadcast = _section(config, "broadcast")
        presence = _section(config, "presence")
        key = presence.get("key", "")
        if not isinstance(key, str):
            raise JoinPayloadError(f"config.presence.key: unable to parse, expected string, got {key!r}")
        changes = config.get("postgres_changes")
        changes = [] if changes is None else changes
        if not isinstance(changes, list):
            raise JoinPayloadError("config.postgres_changes: unable to parse, expected a list of objects")
        return cls(
            ack=_bool(broadcast.get("ack"), "config.broadcast.ack"),
            self_broadcast=_bool(broadcast.get("self"), "config.broadcast.self"),
            presence_key=key or str(uuid.uuid1()),
            presence_enabled=_bool(presence.get("enabled"), "config.presence.enabled"),
            private=_bool(config.get("private"), "config.private"),
            bindings=tuple(parse_binding(b, catalog) for b in changes),
        )


@dataclass(eq=False)
class Channel:
    """A joined topic on one connection. Compared by identity: it is a member of the hub's index sets."""

    conn: Peer
    topic: str
    join_ref: str | None
    config: JoinConfig
    token: str
    claims: Claims
    presence_enabled: bool = False
    expiry_timer: asyncio.TimerHandle | None = None
    permissions: Permissions | None = None
    """What the caller may do on a private channel (authorization.py); None on a public one (everything)."""
    pg_prefix: str = field(init=False, repr=False)
    """`{"topic":…,"event":"postgres_changes","ref":null,"payload":{"ids":` (vsn 1.0.0) — built once per channel."""
    pg_suffix: str = field(init=False, repr=False)
    """What closes the frame after the data: `}}` (vsn 1.0.0) or `}]` (vsn 2.0.0)."""
    joined_at: dt.datetime = field(init=False, repr=False)
    """Changes committed before the join are not the channel's (the join reply says it is subscribed from now)."""
    identities: list[tuple[dt.datetime, str, Claims]] = field(init=False, repr=False)
    """(since, token, claims), oldest first: who the channel was when. Changes reach the hub a few milliseconds
    after their commit, so each is checked as the identity the channel had at the commit."""

    def __post_init__(self) -> None:
        self.pg_prefix, self.pg_suffix = self.conn.codec.pg_parts(self.topic)
        self.presence_enabled = self.config.presence_enabled
        self.joined_at = dt.datetime.now(dt.UTC)
        self.identities = [(self.joined_at, self.token, self.claims)]

    def switch_identity(self, token: str, claims: Claims) -> None:
        """A new access token (the `access_token` push): changes committed from now on are checked as it."""
        self.token, self.claims = token, claims
        self.identities = [*self.identities[-(MAX_IDENTITIES - 1) :], (dt.datetime.now(dt.UTC), token, claims)]

    def identity_at(self, commit_time: dt.datetime) -> tuple[str, Claims] | None:
        """(token, claims) the channel had when a change committed; None if it joined after the commit."""
        for since, token, claims in reversed(self.identities):
            if since <= commit_time:
                return token, claims
        return None

    @property
    def sub_topic(self) -> str:
        """The topic without `realtime:`: what policies see as realtime.topic()."""
        return self.topic.removeprefix(frames.TOPIC_PREFIX)

    @property
    def may_broadcast(self) -> bool:
        return self.permissions is None or self.permissions.broadcast_write

    @property
    def presence_readable(self) -> bool:
        return self.permissions is None or self.permissions.presence_read

    @property
    def may_track(self) -> bool:
        return self.permissions is None or self.permissions.presence_write

    @property
    def topic_key(self) -> tuple[bool, str]:
        """Private and public channels of the same name are different topics (Tenants.tenant_topic)."""
        return (self.config.private, self.topic)

    @property
    def active_bindings(self) -> tuple[Binding, ...]:
        if any(b.error for b in self.config.bindings):
            return ()  # Realtime subscribes all bindings or none
        return self.config.bindings

    def ids_for(self, table: TableKey, kind: str, row: dict[str, Any]) -> list[int]:
        """The ids of this channel's bindings that want the change (empty: the channel gets no event)."""
        ids: list[int] = []
        for binding in self.active_bindings:
            if table in binding.tables and binding.matches(kind, row) and binding.id not in ids:
                ids.append(binding.id)
        return ids
