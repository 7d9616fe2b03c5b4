"""pgoutput messages and column values, byte by byte (no database): the parser reads what the protocol
documentation specifies, the decoder applies Supabase's old_record rules, values come out as PostgREST prints them."""

from __future__ import annotations

import datetime as dt
import struct

import pytest

from harness.refstack.region.realtime import pgoutput, pgvalues
from harness.refstack.region.realtime.catalog import Catalog, Column, Table
from harness.refstack.region.realtime.changes import Decoder, commit_timestamp

UUID, TEXT, JSONB, TIMESTAMPTZ, BOOL, INT8 = 2950, 25, 3802, 1184, 16, 20
OID = 16400
COMMIT = dt.datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


def _micros(moment: dt.datetime) -> int:
    return (moment - pgoutput.PG_EPOCH) // dt.timedelta(microseconds=1)


def _string(text: str) -> bytes:
    return text.encode() + b"\x00"


def begin() -> bytes:
    return b"B" + struct.pack("!qqI", 0x1000, _micros(COMMIT), 7)


def relation(identity: str = "d") -> bytes:
    columns = [(1, "id", UUID), (0, "body", TEXT), (0, "meta", JSONB), (0, "at", TIMESTAMPTZ), (0, "ok", BOOL)]
    if identity == "f":
        columns = [(1, name, oid) for _, name, oid in columns]
    out = b"R" + struct.pack("!I", OID) + _string("public") + _string("notes") + identity.encode()
    out += struct.pack("!h", len(columns))
    for flags, name, oid in columns:
        out += bytes([flags]) + _string(name) + struct.pack("!Ii", oid, -1)
    return out


def tuple_data(*values: str | pgoutput.Unchanged | None) -> bytes:
    out = struct.pack("!h", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif isinstance(value, pgoutput.Unchanged):
            out += b"u"
        else:
            raw = value.encode()
            out += b"t" + struct.pack("!i", len(raw)) + raw
    return out


ID = "7f1d2c3b-0000-4000-8000-000000000001"
ROW = (ID, "hello", '{"a": [1, 2.5, null]}', "2025-01-02 03:04:05.1+00", "t")
RECORD = {"id": ID, "body": "hello", "meta": {"a": [1, 2.5, None]}, "at": "2025-01-02T03:04:05.1+00:00", "ok": True}


def catalog() -> Catalog:
    names = [("id", "uuid"), ("body", "text"), ("meta", "jsonb"), ("at", "timestamptz"), ("ok", "bool")]
    table = Table("public", "notes", tuple(Column(n, t) for n, t in names), ("id",))
    types = {UUID: "uuid", TEXT: "text", JSONB: "jsonb", TIMESTAMPTZ: "timestamptz", BOOL: "bool", INT8: "int8"}
    return Catalog({("public", "notes"): table}, types)


def decoded(*messages: bytes) -> list[dict[str, object]]:
    decoder = Decoder(catalog())
    out = []
    for raw in messages:
        change = decoder.feed(pgoutput.parse(raw))
        if change is not None:
            out.append({"type": change.type, "record": change.record, "old": change.old_record, "key": change.key_text})
    return out


def test_begin_relation_and_commit_are_read_field_by_field() -> None:
    first = pgoutput.parse(begin())
    assert first == pgoutput.Begin(0x1000, COMMIT, 7)
    described = pgoutput.parse(relation())
    assert isinstance(described, pgoutput.Relation)
    assert (described.oid, described.schema, described.name, described.replica_identity) == (
        OID,
        "public",
        "notes",
        "d",
    )
    assert [(c.name, c.type_oid, c.key) for c in described.columns][:2] == [("id", UUID, True), ("body", TEXT, False)]
    commit = pgoutput.parse(b"C\x00" + struct.pack("!qqq", 0x1000, 0x1100, _micros(COMMIT)))
    assert commit == pgoutput.Commit(0x1000, 0x1100, COMMIT)


def test_an_insert_is_a_record_with_json_types_and_the_event_timestamp_in_milliseconds() -> None:
    [insert] = decoded(begin(), relation(), b"I" + struct.pack("!I", OID) + b"N" + tuple_data(*ROW))
    assert insert == {"type": "INSERT", "record": RECORD, "old": None, "key": (ID,)}
    assert commit_timestamp(COMMIT) == "2025-01-02T03:04:05.678Z"


def test_update_and_delete_without_replica_identity_full_carry_only_the_key() -> None:
    update = b"U" + struct.pack("!I", OID) + b"N" + tuple_data(ID, "edited", None, ROW[3], "f")
    delete = b"D" + struct.pack("!I", OID) + b"K" + tuple_data(ID, None, None, None, None)
    [changed, deleted] = decoded(begin(), relation(), update, delete)
    assert changed["old"] == {"id": ID} and changed["record"] == {**RECORD, "body": "edited", "meta": None, "ok": False}
    assert deleted == {"type": "DELETE", "record": None, "old": {"id": ID}, "key": (ID,)}


def test_replica_identity_full_gives_the_whole_old_row_and_fills_unchanged_toast_from_it() -> None:
    update = (
        b"U" + struct.pack("!I", OID) + b"O" + tuple_data(*ROW) + b"N" + tuple_data(ID, pgoutput.UNCHANGED, *ROW[2:])
    )
    [changed] = decoded(begin(), relation("f"), update)
    assert changed["old"] == RECORD and changed["record"] == RECORD


def test_an_unchanged_toast_value_without_the_old_row_is_left_out_of_the_record() -> None:
    update = b"U" + struct.pack("!I", OID) + b"N" + tuple_data(ID, pgoutput.UNCHANGED, *ROW[2:])
    [changed] = decoded(begin(), relation(), update)
    record = changed["record"]
    assert isinstance(record, dict) and "body" not in record and record["ok"] is True


@pytest.mark.parametrize(
    "data",
    [b"", b"I\x00\x00", b"R\x00\x00\x40\x00public", b"Z", b"I" + struct.pack("!I", OID) + b"N\x00\x01x"],
    ids=["empty", "truncated-insert", "unterminated-string", "unknown-tag", "unknown-value-kind"],
)
def test_malformed_messages_raise_protocol_errors(data: bytes) -> None:
    with pytest.raises(pgoutput.ProtocolError):
        pgoutput.parse(data)


@pytest.mark.parametrize(
    ("oid", "text", "value"),
    [
        (pgvalues.BOOL, "f", False),
        (pgvalues.INT4, "-42", -42),
        (pgvalues.INT8, "9223372036854775807", 2**63 - 1),
        (pgvalues.NUMERIC, "12.50", 12.5),
        (pgvalues.NUMERIC, "NaN", "NaN"),
        (pgvalues.FLOAT8, "Infinity", "Infinity"),
        (pgvalues.FLOAT4, "1e-05", 1e-05),
        (pgvalues.JSONB, '{"k": "\\u00e9"}', {"k": "é"}),
        (pgvalues.JSON, '"\\ud800"', '"\\ud800"'),  # a lone surrogate cannot go out as UTF-8: its JSON text does
        (pgvalues.JSON, '{"n": 1e400}', '{"n": 1e400}'),  # beyond a double: no JSON number for it, so its text
        (pgvalues.JSONB, "[" * 600 + "]" * 600, "[" * 600 + "]" * 600),  # too deep to re-encode: its text
        (pgvalues.TIMESTAMPTZ, "2025-01-02 03:04:05+00", "2025-01-02T03:04:05+00:00"),
        (pgvalues.TIMESTAMPTZ, "2025-01-02 03:04:05.123456+05:30", "2025-01-02T03:04:05.123456+05:30"),
        (pgvalues.TIMESTAMPTZ, "infinity", "infinity"),
        (pgvalues.TIMESTAMP, "2025-01-02 03:04:05", "2025-01-02T03:04:05"),
    ],
)
def test_values_come_out_as_postgrest_prints_them(oid: int, text: str, value: object) -> None:
    convert = pgvalues.converter(oid)
    assert convert is not None and convert(text) == value


def test_types_without_a_json_form_stay_text() -> None:
    assert pgvalues.converter(UUID) is None and pgvalues.converter(1082) is None  # uuid, date
