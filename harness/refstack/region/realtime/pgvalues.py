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

import json
import re
from collections.abc import Callable
from typing import Any

from harness.refstack.region.realtime import frames

BOOL, INT2, INT4, INT8, OID = 16, 21, 23, 20, 26
FLOAT4, FLOAT8, NUMERIC = 700, 701, 1700
JSON, JSONB = 114, 3802
TIMESTAMP, TIMESTAMPTZ = 1114, 1184

RECORD_MAX_DEPTH = 500
"""Deepest json/jsonb value delivered as JSON (jsonb allows far deeper); deeper ones go out as their text, since
encoding them again for the event would overflow Python's recursion limit (about 1,000 frames)."""
_OFFSET_HOURS = re.compile(r"([+-]\d{2})$")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


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
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text  # nested deeper than Python's parser goes: deliver the text rather than lose the change
    if text.count("[") + text.count("{") > RECORD_MAX_DEPTH and frames.too_deep(value, RECORD_MAX_DEPTH):
        return text  # too deep to encode again inside an event: delivered as its JSON text
    if _SURROGATE_ESCAPE.search(text):
        # A `json` (not jsonb) column keeps escapes such as "\ud800" verbatim; a lone surrogate cannot be sent as
        # UTF-8 in a websocket frame, so such a value is delivered as its JSON text.
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return text
    return value


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
