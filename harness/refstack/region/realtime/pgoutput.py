"""pgoutput's binary messages (logical replication protocol, proto_version 1), one per row of
`pg_logical_slot_get_binary_changes`, parsed into plain values.

    B  Begin     final LSN, commit timestamp, xid
    R  Relation  oid, schema, name, replica identity, columns (key flag, name, type OID, typmod)
    I  Insert    relation oid, new tuple
    U  Update    relation oid, old tuple (K: key columns, O: the whole row with REPLICA IDENTITY FULL) or none,
                 new tuple
    D  Delete    relation oid, old tuple (K or O)
    C  Commit    flags, commit LSN, end LSN, commit timestamp
    T  Truncate  relation oids; O Origin, Y Type, M Message: not row changes, returned as `Other`

Tuple values are text (the type's output function, in the decoding session's TimeZone and DateStyle), None for
NULL, or UNCHANGED for a TOASTed value an UPDATE did not touch (pgoutput does not send it again).
Reference: https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass
from typing import Final


class Unchanged:
    """A TOASTed column an UPDATE left as it was: pgoutput sends its marker, not its value."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = Unchanged()
Value = str | Unchanged | None
PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
"""PostgreSQL timestamps count microseconds from here."""


class ProtocolError(ValueError):
    """A message that is not pgoutput proto_version 1 (truncated, or an unknown tag)."""


@dataclass(frozen=True)
class Begin:
    final_lsn: int
    commit_time: dt.datetime
    xid: int


@dataclass(frozen=True)
class Commit:
    lsn: int
    end_lsn: int
    commit_time: dt.datetime


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int
    key: bool
    """Part of the replica identity (the primary key by default): these columns make the old tuple of a `K`."""


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    name: str
    replica_identity: str
    """d default (primary key), f full, i index, n nothing."""
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Insert:
    relation_oid: int
    new: tuple[Value, ...]


@dataclass(frozen=True)
class Update:
    relation_oid: int
    old: tuple[Value, ...] | None
    old_is_full: bool
    """True for an `O` tuple (REPLICA IDENTITY FULL: every column), False for `K` (key columns only) or none."""
    new: tuple[Value, ...]


@dataclass(frozen=True)
class Delete:
    relation_oid: int
    old: tuple[Value, ...]
    old_is_full: bool


@dataclass(frozen=True)
class Truncate:
    relation_oids: tuple[int, ...]


@dataclass(frozen=True)
class Other:
    """Origin, Type, logical Message, stream control: nothing Realtime delivers."""

    tag: str


Message = Begin | Commit | Relation | Insert | Update | Delete | Truncate | Other

_INT8 = struct.Struct("!q")
_INT32 = struct.Struct("!i")
_UINT32 = struct.Struct("!I")
_INT16 = struct.Struct("!h")
_BEGIN = struct.Struct("!qqI")
_COMMIT = struct.Struct("!bqqq")


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise ProtocolError(f"message truncated: wanted {size} bytes at offset {self.pos} of {len(self.data)}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def unpack(self, layout: struct.Struct) -> tuple[int, ...]:
        try:
            values = layout.unpack_from(self.data, self.pos)
        except struct.error:
            raise ProtocolError(f"message truncated at offset {self.pos} of {len(self.data)}") from None
        self.pos += layout.size
        return values

    def byte(self) -> str:
        return chr(self.take(1)[0])

    def string(self) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise ProtocolError(f"unterminated string at offset {self.pos}")
        text = self.data[self.pos : end].decode("utf-8")
        self.pos = end + 1
        return text

    def tuple_data(self) -> tuple[Value, ...]:
        (count,) = self.unpack(_INT16)
        values: list[Value] = []
        for _ in range(count):
            kind = self.byte()
            if kind == "t":
                (size,) = self.unpack(_INT32)
                values.append(self.take(size).decode("utf-8"))
            elif kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED)
            else:  # "b" (binary) only comes when the slot is read with binary 'true', which we never ask for
                raise ProtocolError(f"unexpected tuple value kind {kind!r}")
        return tuple(values)


def timestamp(micros: int) -> dt.datetime:
    return PG_EPOCH + dt.timedelta(microseconds=micros)


def parse(data: bytes) -> Message:
    """One pgoutput message; ProtocolError if it is malformed."""
    if not data:
        raise ProtocolError("empty message")
    reader = _Reader(data)
    tag = reader.byte()
    if tag == "B":
        final_lsn, micros, xid = reader.unpack(_BEGIN)
        return Begin(final_lsn, timestamp(micros), xid)
    if tag == "C":
        _flags, lsn, end_lsn, micros = reader.unpack(_COMMIT)
        return Commit(lsn, end_lsn, timestamp(micros))
    if tag == "R":
        (oid,) = reader.unpack(_UINT32)
        schema, name, identity = reader.string(), reader.string(), reader.byte()
        (count,) = reader.unpack(_INT16)
        columns = []
        for _ in range(count):
            flags = reader.take(1)[0]
            column_name = reader.string()
            type_oid, _typmod = reader.unpack(_UINT32)[0], reader.unpack(_INT32)[0]
            columns.append(Column(column_name, type_oid, bool(flags & 1)))
        return Relation(oid, schema, name, identity, tuple(columns))
    if tag == "I":
        (oid,) = reader.unpack(_UINT32)
        if reader.byte() != "N":
            raise ProtocolError("Insert without a new tuple")
        return Insert(oid, reader.tuple_data())
    if tag == "U":
        (oid,) = reader.unpack(_UINT32)
        kind = reader.byte()
        old: tuple[Value, ...] | None = None
        full = kind == "O"
        if kind in ("K", "O"):
            old = reader.tuple_data()
            kind = reader.byte()
        if kind != "N":
            raise ProtocolError(f"Update without a new tuple (got {kind!r})")
        return Update(oid, old, full, reader.tuple_data())
    if tag == "D":
        (oid,) = reader.unpack(_UINT32)
        kind = reader.byte()
        if kind not in ("K", "O"):
            raise ProtocolError(f"Delete without an old tuple (got {kind!r})")
        return Delete(oid, reader.tuple_data(), kind == "O")
    if tag == "T":
        (count,) = reader.unpack(_INT32)
        reader.take(1)  # options: CASCADE, RESTART IDENTITY
        return Truncate(tuple(reader.unpack(_UINT32)[0] for _ in range(count)))
    if tag in "OYMSEcAr":
        return Other(tag)
    raise ProtocolError(f"unknown message tag {tag!r}")
