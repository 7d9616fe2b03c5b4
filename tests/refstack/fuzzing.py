"""Hypothesis strategies for hostile HTTP input, and the error shapes each service of the reference stack answers in.

The strategies make bytes, not text, so what reaches a server is exactly what a broken or hostile client could
send: invalid UTF-8 and UTF-8-encoded surrogates in paths, query strings and header values; percent escapes that
decode to neither; JSON bodies with NaN, Infinity, floats beyond a double, integers longer than Python converts,
lone surrogate escapes, NUL, nesting from shallow to 100,000 deep, truncation, and sizes around the limits.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from tests.refstack.rawhttp import RawResponse

# -- bytes for the request line and headers ---------------------------------------------------------------------
ODD_BYTES = [b"\xff", b"\xfe", b"\xc3", b"\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", "é".encode()]
"""Invalid UTF-8 (stray, truncated, a surrogate and a code point beyond U+10FFFF as UTF-8, overlong), and valid."""
PERCENT = ["%ff", "%ED%A0%80", "%00", "%", "%z", "%2f", "%25", "%C3%A9", "%F0%9F%98%80", "%c0%af", "%0d%0a"]

safe_ascii = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="?#%"), max_size=12
)
path_piece = st.one_of(safe_ascii.map(str.encode), st.sampled_from(ODD_BYTES), st.sampled_from(PERCENT).map(str.encode))
path_tail = st.lists(path_piece, max_size=6).map(b"".join)
query_piece = st.one_of(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.,()*:!-=&;", max_size=10).map(str.encode),
    st.sampled_from(ODD_BYTES),
    st.sampled_from(PERCENT).map(str.encode),
)
query = st.lists(query_piece, max_size=8).map(lambda parts: b"?" + b"".join(parts) if parts else b"")
header_value = st.one_of(
    st.binary(max_size=40).map(lambda b: b.translate(None, b"\r\n\x00").strip()),
    st.lists(st.one_of(safe_ascii.map(str.encode), st.sampled_from(ODD_BYTES)), max_size=4).map(b"".join),
)

# -- JSON bodies ------------------------------------------------------------------------------------------------
HAZARD_SCALARS = [
    "NaN", "Infinity", "-Infinity", "1e400", "-1e999", "1" + "0" * 5000, '"\\ud800"', '"\\udfff\\ud800"', '"a\\u0000b"',
    '"\\ud83d\\ude00"', "1e-400", "-0", "123456789012345678901234567890", '"' + "x" * 300 + '"',
]  # fmt: skip
DEPTHS = [2, 99, 101, 513, 1_000, 100_000]


def _nested(depth: int, inner: str) -> str:
    return "[" * depth + inner + "]" * depth


text = st.text(max_size=20)
plain_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=10,
)


@st.composite
def hazard_json(draw: st.DrawFn, fields: dict[str, Any] | None = None) -> bytes:
    """A JSON-ish body: a plausible object (with `fields` when given, so it reaches a handler's later checks)
    carrying one hazard, nested at some depth, sometimes truncated or given bytes that are not UTF-8."""
    base: dict[str, Any] = dict(fields or {})
    names = st.sampled_from(["x", "data", "metadata", "payload", "n"])
    base.update(draw(st.dictionaries(names, plain_json, max_size=2)))
    hazard = draw(st.sampled_from(HAZARD_SCALARS))
    depth = draw(st.sampled_from([0, 0, 0, *DEPTHS]))
    key = draw(st.sampled_from([*base, "hazard"] if base else ["hazard"]))
    doc = json.dumps(base)
    body = doc[:-1] + (", " if base else "") + json.dumps(key) + ": " + _nested(depth, hazard) + "}"
    mangle = draw(st.sampled_from(["none", "none", "none", "truncate", "bad-utf8", "array", "bom"]))
    raw = body.encode("utf-8", "surrogatepass")
    if mangle == "truncate":
        raw = raw[: draw(st.integers(0, max(len(raw) - 1, 0)))]
    elif mangle == "bad-utf8":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from(ODD_BYTES)) + raw[at:]
    elif mangle == "array":
        raw = b"[" + raw + b"]"
    elif mangle == "bom":
        raw = b"\xef\xbb\xbf" + raw
    return raw


OVERSIZE_BYTES = [64 * 1024 + 1, 1024 * 1024 + 1]
"""Just over the function's and GoTrue's body limits (Storage's fuzz region has a 4 KiB object limit)."""


def _oversize(size: int) -> bytes:
    return b'{"x":"' + b"a" * size + b'"}'


def any_body(fields: dict[str, Any] | None = None) -> st.SearchStrategy[bytes]:
    """A hazardous JSON body, a well-formed one, arbitrary bytes, or one just over a service's size limit."""
    well_formed = st.dictionaries(text, plain_json, max_size=3).map(lambda extra: {**(fields or {}), **extra})
    return st.one_of(
        hazard_json(fields),
        well_formed.map(lambda v: json.dumps(v).encode()),
        plain_json.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=64),
        st.sampled_from(OVERSIZE_BYTES).map(_oversize),
    )


# -- the error shapes, by service ---------------------------------------------------------------------------------
def _postgrest(body: Any) -> bool:
    return isinstance(body, dict) and (set(body) == {"code", "details", "hint", "message"} or _kong(body))


def _gotrue(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    legacy = isinstance(body.get("code"), int) and isinstance(body.get("error_code"), str) and "msg" in body
    versioned = isinstance(body.get("code"), str) and isinstance(body.get("message"), str)
    return legacy or versioned or _kong(body)


def _storage(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and isinstance(body.get("statusCode"), str)
        and bool(body.get("message"))
        and ("error" in body)
    )


def _functions(body: Any) -> bool:
    return isinstance(body, dict) and (isinstance(body.get("error"), str) or isinstance(body.get("msg"), str))


def _realtime(body: Any) -> bool:
    return isinstance(body, dict) and (isinstance(body.get("error"), str) or _kong(body))


def _kong(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("message"), str)


SHAPES: list[tuple[str, Callable[[Any], bool]]] = [
    ("/rest/v1", _postgrest),
    ("/auth/v1", _gotrue),
    ("/storage/v1", _storage),
    ("/functions/v1", _functions),
    ("/realtime/v1", _realtime),
    ("", _kong),  # /health, /_admin/…, and paths no service serves: the gateway's {"message"}
]


def service_shape(path: str) -> Callable[[Any], bool]:
    return next(shape for prefix, shape in SHAPES if path == prefix or path.startswith(prefix + "/") or not prefix)


def check_region_answer(method: bytes, target: bytes, response: RawResponse) -> None:
    """No 5xx; an error the region answered is JSON in its service's shape, stamped with x-origin-region. A request
    aiohttp's HTTP parser refuses (bytes no HTTP/1.1 request line or header may hold) gets the parser's plain 400."""
    assert response.status < 500, (method, target, response)
    if response.status < 400 or method == b"HEAD":
        return
    if response.refused_by_http_parser:
        return
    assert "x-origin-region" in response.headers, (method, target, response)
    body = json.loads(response.body)
    path = target.split(b"?", 1)[0].decode("latin-1")
    assert service_shape(path)(body), (method, target, response.status, body)
