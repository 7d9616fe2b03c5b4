"""One strict JSON reader for every request body the reference stack parses (the region's services, the edge's
admin API), so they all refuse the same things the real services' parsers refuse.

Python's json module accepts more than Aeson (PostgREST), Go's encoding/json (GoTrue), JSON.parse (Storage) or
Jason (Realtime) do, and what it lets through later fails as a 500 or leaves as invalid JSON:

    the literals NaN, Infinity, -Infinity     not JSON; Postgres's jsonb refuses them (22P02), Python writes them back
    floats beyond float64 (1e400)             read as inf, written back as `Infinity` (refused unless `big_floats`)
    lone UTF-16 surrogates ("\\ud800")        no UTF-8 text can hold them: encoding for Postgres or a socket fails
    nesting deeper than `max_depth`           a recursive encoder further on overflows Python's stack
    bytes that are not UTF-8                  (json.loads would guess UTF-16 or UTF-32 from the first bytes)
    NUL ("\\u0000"), if `allow_nul` is False   Postgres's text and jsonb refuse it

`loads` raises `JsonBodyError` (a ValueError) with a `reason` and a message naming the problem; each service renders
it in its own 4xx shape: PostgREST PGRST102, GoTrue 400 `bad_json`, Storage InvalidRequest, `{"error"}` for
functions and the Realtime API, `{"message"}` for admin routes.

    raw bytes ─► UTF-8 (strict) ─► json.loads (no constants, floats checked) ─► depth, surrogates, NUL ─► value
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal

Reason = Literal["not_utf8", "syntax", "non_finite", "too_deep", "lone_surrogate", "nul"]

MAX_DEPTH = 512
"""Deepest nesting of arrays and objects accepted by default: far beyond any real payload, and shallow enough that
re-encoding the value (json.dumps, asyncpg, a websocket frame) stays well inside Python's recursion limit."""

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_NUL_ESCAPE = "\\u0000"
_TOKEN = re.compile(r'"(?:[^"\\]|\\.?)*+(?:"|\Z)|[\[\]{}:,]')
"""A whole string (an unterminated one runs to the end: one match, so a scan stays linear) or a structural
character outside strings."""


class JsonBodyError(ValueError):
    """The body is not JSON this stack accepts. `reason` says which rule it broke; str() is a message for users."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.message = message


def _refuse_constant(name: str) -> Any:
    raise JsonBodyError("non_finite", f"{name} is not a JSON number: numbers must be finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JsonBodyError("non_finite", f"{text[:40]} is beyond a double's range: numbers must be finite")
    return value


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH, allow_nul: bool = True, big_floats: bool = False) -> Any:
    """The JSON value of `raw`, or JsonBodyError.

    `big_floats`: accept floats beyond a double's range (they come back as inf): for callers that pass the raw
    text on (PostgREST hands the body to Postgres, whose numeric holds 1e400) and only read keys in Python."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonBodyError("not_utf8", f"the body is not UTF-8 (byte {exc.start})") from None
    else:
        text = raw
    if text.count("[") + text.count("{") > max_depth and _exceeds_depth(text, max_depth):
        # Decided before parsing: json.loads would stop only at Python's recursion limit, which depends on how deep
        # the caller's own stack already is.
        raise JsonBodyError("too_deep", f"the JSON is nested deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=float if big_floats else _finite_float)
    except JsonBodyError:
        raise
    except RecursionError:  # a max_depth near the recursion limit
        raise JsonBodyError("too_deep", f"the JSON is nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # JSONDecodeError, and integers longer than sys.get_int_max_str_digits()
        raise JsonBodyError("syntax", f"invalid JSON: {exc}") from None
    # The walk runs only when a cheap scan of the text says it may find something.
    surrogates = _SURROGATE_ESCAPE.search(text) is not None
    nul = not allow_nul and _NUL_ESCAPE in text
    if surrogates or nul:
        _check_strings(value, surrogates, nul)
    return value


def _exceeds_depth(text: str, max_depth: int) -> bool:
    depth = 0
    for match in _TOKEN.finditer(text):
        char = text[match.start()]
        if char in "[{":
            depth += 1
            if depth > max_depth:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _check_strings(value: Any, surrogates: bool, nul: bool) -> None:
    """Every key and string (iterative: no recursion to overflow)."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if nul and "\x00" in item:
                raise JsonBodyError("nul", "strings must not contain NUL (\\u0000)")
            if surrogates:
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    # json.loads joins valid pairs, so a surrogate left in a string is a lone one.
                    raise JsonBodyError(
                        "lone_surrogate", "strings must not contain lone UTF-16 surrogates (\\ud800-\\udfff)"
                    ) from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def top_level_members(text: str, names: frozenset[str], max_value_chars: int = 1024) -> dict[str, Any]:
    """The members `names` of the JSON object `text`, each read strictly, without parsing anything else: how a
    refused message (too deep, NaN or a lone surrogate somewhere in its payload) can still be answered on its topic.
    A member whose value is not a strict JSON scalar, or is longer than `max_value_chars`, is left out; everything
    is when `text` is not an object. Linear in the length of `text`."""
    found: dict[str, Any] = {}
    depth, key, value_start = 0, "", -1
    for match in _TOKEN.finditer(text):
        start = match.start()
        char = text[start]
        if depth == 0 and char != "{":
            return {}
        if depth == 1:
            if char == '"' and value_start < 0:
                key = match.group()
            elif char == ":":
                value_start = match.end()
            elif char in ",}" and value_start >= 0:
                _add_member(found, names, key, text[value_start:start], max_value_chars)
                key, value_start = "", -1
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                break
    return found


def _add_member(found: dict[str, Any], names: frozenset[str], key: str, raw: str, max_chars: int) -> None:
    if not key or len(raw) > max_chars:
        return
    try:
        name = loads(key)
        if name in names:
            found[name] = loads(raw, max_depth=0)
    except JsonBodyError:
        return
