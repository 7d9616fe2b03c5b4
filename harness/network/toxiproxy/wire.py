"""JSON in and out as Toxiproxy's Go server does it: compact output with `<`, `>`, `&` escaped, and request
bodies read as the first JSON value (an empty body is the error "EOF").

Only JSON gets in or out: a body holding NaN or Infinity, a number too large for a float64, a lone UTF-16
surrogate (`"\\ud800"`) or nesting deeper than Python's parser goes is refused here, so nothing stored can make a
later answer fail; and the encoder raises rather than write NaN or a surrogate (a bug, never a wrong answer).
"""

from __future__ import annotations

import json
import math
import re

_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})
_SURROGATE = re.compile("[\ud800-\udfff]")

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""Toxiproxy's integer fields are Go int64s: a value outside this range is a decoding error there."""


def encode_json(value: object) -> str:
    """Compact JSON as Go writes it. Raises ValueError on NaN, Infinity or a lone surrogate."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if _SURROGATE.search(text):
        raise ValueError("refusing to write a lone UTF-16 surrogate")
    return text.translate(_GO_ESCAPES)


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number (use a finite number, e.g. 0.5)")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"number {literal[:40]} is out of range (use a finite number, e.g. 0.5)")
    return value


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def decode_json(body: bytes) -> object:
    """The first JSON value in `body`. Raises ValueError with a short reason."""
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise ValueError(f"body is not UTF-8 ({exc.reason})") from None
    text = text.lstrip()
    if not text:
        raise ValueError("EOF")
    try:
        value, _ = _DECODER.raw_decode(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at offset {exc.pos}") from None
    except RecursionError:
        raise ValueError("invalid JSON: nested too deeply (at most a few hundred levels)") from None
    except ValueError as exc:  # from the hooks above, or an integer literal too long to convert
        raise ValueError(f"invalid JSON: {exc}") from None
    _refuse_surrogates(value)
    return value


def _refuse_surrogates(value: object) -> None:
    """Raise ValueError if any string or key holds a lone surrogate (only a `\\uD800`-style escape makes one)."""
    pending = [value]
    while pending:  # a loop, not recursion: the value may be as deep as the parser allowed
        item = pending.pop()
        if isinstance(item, str):
            strings = [item]
        elif isinstance(item, dict):
            strings = list(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
            continue
        else:
            continue
        for string in strings:
            if _SURROGATE.search(string):
                raise ValueError("invalid JSON: a string holds a lone UTF-16 surrogate (send valid Unicode text)")


def json_type(value: object) -> str:
    """The JSON name of a value's type, for messages that must not echo the value itself (it may be huge)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def field(obj: dict[str, object], name: str, kind: type, default: object) -> object:
    """`obj[name]` if present and of `kind` (null keeps the default, as Go's decoder does). Raises ValueError.
    A float must be finite and an int must fit Go's int64, as when Toxiproxy decodes into its structs."""
    value = obj.get(name)
    if value is None:
        return default
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ValueError(f"field {name}: {json_type(value)} is not a {_KIND_NAMES.get(kind, kind.__name__)}")
    if kind is float:
        return finite(name, value)
    if kind is int:
        return int64(f"field {name}", value)  # type: ignore[arg-type]
    return value


def finite(name: str, value: object) -> float:
    """`value` as a finite float; ValueError naming `name` when it is not (e.g. the integer 10**400)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"field {name}: number out of range (use a finite number, e.g. 0.5)")
    return number


def int64(label: str, value: int) -> int:
    """`value` if it fits Go's int64; ValueError starting with `label` otherwise."""
    if not INT64_MIN <= value <= INT64_MAX:
        shown = value if abs(value) < 10**30 else "the number"
        raise ValueError(f"{label}: {shown} does not fit in a 64-bit integer ({INT64_MIN} to {INT64_MAX})")
    return value


_KIND_NAMES = {str: "string", bool: "boolean (true or false)", float: "number", int: "integer"}
