"""From pgoutput messages to postgres_changes records: the shape Realtime sends in an event's `data`.

    Relation ─► RelationInfo (cached by OID: column names, converters, key, the `columns` JSON)
    Begin    ─► the commit timestamp of the rows that follow
    Insert / Update / Delete ─► Change(record, old_record, key for the visibility check)

old_record, as on Supabase: every column when the table has REPLICA IDENTITY FULL (pgoutput sends the whole old
row), else the replica identity's columns only (the primary key). A TOASTed value an UPDATE did not touch is not
in the WAL: it is taken from the old row when the table is FULL, otherwise left out of `record`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.refstack.region.realtime import frames, pgoutput, pgvalues
from harness.refstack.region.realtime.catalog import Catalog

ChangeType = Literal["INSERT", "UPDATE", "DELETE"]


@dataclass(frozen=True)
class RelationInfo:
    oid: int
    schema: str
    name: str
    names: tuple[str, ...]
    converters: tuple[Callable[[str], Any] | None, ...]
    identity: tuple[int, ...]
    """Indexes of the replica identity's columns (what a `K` old tuple carries)."""
    key: tuple[int, ...]
    """Indexes of the columns that find the row again (the primary key; the identity when there is none)."""
    key_names: tuple[str, ...]
    columns_json: str
    """`[{"name":…,"type":…}, …]`, serialized once per relation."""

    @classmethod
    def of(cls, relation: pgoutput.Relation, catalog: Catalog) -> RelationInfo:
        names = tuple(c.name for c in relation.columns)
        identity = tuple(i for i, c in enumerate(relation.columns) if c.key)
        table = catalog.table(relation.schema, relation.name)
        primary = table.primary_key if table is not None else ()
        key = tuple(names.index(n) for n in primary if n in names) if primary else identity
        types = [catalog.type_names.get(c.type_oid, "text") for c in relation.columns]
        return cls(
            oid=relation.oid,
            schema=relation.schema,
            name=relation.name,
            names=names,
            converters=tuple(pgvalues.converter(c.type_oid) for c in relation.columns),
            identity=identity,
            key=key,
            key_names=tuple(names[i] for i in key),
            columns_json=frames.dumps([{"name": n, "type": t} for n, t in zip(names, types, strict=True)]),
        )

    def value(self, index: int, text: str | None) -> Any:
        if text is None:
            return None
        convert = self.converters[index]
        return text if convert is None else convert(text)

    def row(self, values: tuple[pgoutput.Value, ...], indexes: Iterable[int] | None = None) -> dict[str, Any]:
        """Column name → JSON value for the given columns (all by default); UNCHANGED values are left out."""
        out: dict[str, Any] = {}
        for i in range(len(values)) if indexes is None else indexes:
            text = values[i]
            if not isinstance(text, pgoutput.Unchanged):
                out[self.names[i]] = self.value(i, text)
        return out


@dataclass
class Change:
    relation: RelationInfo
    type: ChangeType
    record: dict[str, Any] | None
    old_record: dict[str, Any] | None
    commit_time: dt.datetime
    key_text: tuple[str | None, ...]
    """The key columns' values as text, to look the row up again as each subscriber (visibility.py)."""
    _data_json: str | None = field(default=None, repr=False)

    @property
    def row(self) -> dict[str, Any]:
        """What filters look at: the new row, or for a DELETE what is known of the old one."""
        return self.record if self.record is not None else (self.old_record or {})

    def data_json(self) -> str:
        """The `data` object of the event, serialized once however many subscribers receive it."""
        if self._data_json is None:
            parts = [
                '{"schema":',
                frames.dumps(self.relation.schema),
                ',"table":',
                frames.dumps(self.relation.name),
                ',"commit_timestamp":',
                frames.dumps(commit_timestamp(self.commit_time)),
                ',"type":',
                frames.dumps(self.type),
                ',"columns":',
                self.relation.columns_json,
            ]
            if self.record is not None:
                parts += [',"record":', frames.dumps(self.record)]
            if self.old_record is not None:
                parts += [',"old_record":', frames.dumps(self.old_record)]
            parts.append(',"errors":null}')
            self._data_json = "".join(parts)
        return self._data_json


def commit_timestamp(moment: dt.datetime) -> str:
    """Realtime's wire form: `2024-05-01T10:00:00.123Z` (UTC, milliseconds)."""
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Decoder:
    """Turns a stream of pgoutput messages into Changes. Keeps the relations pgoutput described (by OID)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        """Table keys and type names; the feed loads it again before feeding a Relation it does not describe."""
        self.relations: dict[int, RelationInfo] = {}
        self._commit_time = dt.datetime.now(dt.UTC)

    def feed(self, message: pgoutput.Message) -> Change | None:
        if isinstance(message, pgoutput.Begin):
            self._commit_time = message.commit_time
            return None
        if isinstance(message, pgoutput.Relation):
            self.relations[message.oid] = RelationInfo.of(message, self.catalog)
            return None
        if isinstance(message, pgoutput.Insert):
            info = self.relations[message.relation_oid]
            return Change(info, "INSERT", info.row(message.new), None, self._commit_time, _key(info, message.new))
        if isinstance(message, pgoutput.Update):
            info = self.relations[message.relation_oid]
            new = message.new
            if message.old is not None and message.old_is_full and pgoutput.UNCHANGED in new:
                new = tuple(o if n is pgoutput.UNCHANGED else n for n, o in zip(new, message.old, strict=True))
            if message.old is None:  # the key did not change: the new row has it
                old_record = info.row(new, info.identity)
            elif message.old_is_full:
                old_record = info.row(message.old)
            else:
                old_record = info.row(message.old, info.identity)
            return Change(info, "UPDATE", info.row(new), old_record, self._commit_time, _key(info, new))
        if isinstance(message, pgoutput.Delete):
            info = self.relations[message.relation_oid]
            old = message.old
            old_record = info.row(old) if message.old_is_full else info.row(old, info.identity)
            return Change(info, "DELETE", None, old_record, self._commit_time, _key(info, old))
        return None  # Commit, Truncate (Realtime sends no event for it), Origin, Type, Message

    def set_catalog(self, catalog: Catalog) -> None:
        self.catalog = catalog


def _key(info: RelationInfo, values: tuple[pgoutput.Value, ...]) -> tuple[str | None, ...]:
    return tuple(v if isinstance(v, str) else None for v in (values[i] for i in info.key))
