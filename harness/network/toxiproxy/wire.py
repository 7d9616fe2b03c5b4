"""JSON in and out as Toxiproxy's Go server does it: compact output with `<`, `>`, `&` escaped, and request
bodies read as the first JSON value (an empty body is the error "EOF")."""

from __future__ import annotations

import json

_DECODER = json.JSONDecoder()
_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def encode_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).translate(_GO_ESCAPES)


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
    return value


def field(obj: dict[str, object], name: str, kind: type, default: object) -> object:
    """`obj[name]` if present and of `kind` (null keeps the default, as Go's decoder does). Raises ValueError."""
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
        raise ValueError(f"field {name}: {value!r} is not a {_KIND_NAMES.get(kind, kind.__name__)}")
    return float(value) if kind is float else value  # type: ignore[arg-type]


_KIND_NAMES = {str: "string", bool: "boolean (true or false)", float: "number", int: "integer"}
