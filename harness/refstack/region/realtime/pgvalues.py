"""Column values from pgoutput's text form to the JSON a postgres_changes record carries, as PostgREST prints them.

    bool                      't'/'f'                       → true/false
    int2, int4, int8, oid     '42'                          → 42
    float4, float8, numeric   '1.5'                         → 1.5 (NaN and ±Infinity stay strings: JSON has none)
    json, jsonb               '{"a": 1}'                    → {"a": 1}
    timestamptz               '2024-05-01 10:00:00.12+00'   → "2024-05-01T10:00:00.12+00:00" (to_json's form)
    timestamp                 '2024-05-01 10:00:00'         → "2024-05-01T10:00:00"
    anything else             as text (uuid, text, date, arrays, enums, …)

The decoding session runs with TimeZone UTC and DateStyle ISO (database.py), so timestamptz text always ends in an
offset of hours, optionally with minutes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from harness.model import strict_json

BOOL, INT2, INT4, INT8, OID = 16, 21, 23, 20, 26
FLOAT4, FLOAT8, NUMERIC = 700, 701, 1700
JSON, JSONB = 114, 3802
TIMESTAMP, TIMESTAMPTZ = 1114, 1184

RECORD_MAX_DEPTH = 500
"""Deepest json/jsonb value delivered as JSON (jsonb allows far deeper); deeper ones go out as their text, since
encoding them again for the event would overflow Python's recursion limit (about 1,000 frames)."""
_OFFSET_HOURS = re.compile(r"([+-]\d{2})$")


def _bool(text: str) -> Any:
    return text == "t"


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    number = float(text)
    return number if number - number == 0 else text  # NaN and ±Infinity: JSON has no literal for them


def _json(text: str) -> Any:
    """The value as JSON when a frame can carry it; else its JSON text, so the change is delivered, not lost: a
    `json` (not jsonb) column keeps its text verbatim, lone surrogate escapes ("\\ud800") and floats beyond a
    double (1e400) included, which no UTF-8 frame or JSON number can carry; and nesting past RECORD_MAX_DEPTH
    (jsonb allows far deeper) would overflow encoding it again for the event."""
    try:
        return strict_json.loads(text, max_depth=RECORD_MAX_DEPTH)
    except strict_json.JsonBodyError:
        return text


def _timestamptz(text: str) -> Any:
    if text in ("infinity", "-infinity"):
        return text
    return _OFFSET_HOURS.sub(r"\1:00", text.replace(" ", "T", 1))


def _timestamp(text: str) -> Any:
    return text.replace(" ", "T", 1)


CONVERTERS: dict[int, Callable[[str], Any]] = {
    BOOL: _bool,
    INT2: int,
    INT4: int,
    INT8: int,
    OID: int,
    FLOAT4: _number,
    FLOAT8: _number,
    NUMERIC: _number,
    JSON: _json,
    JSONB: _json,
    TIMESTAMPTZ: _timestamptz,
    TIMESTAMP: _timestamp,
}


def converter(type_oid: int) -> Callable[[str], Any] | None:
    """How to turn a column's text into JSON; None: keep the text."""
    return CONVERTERS.get(type_oid)
