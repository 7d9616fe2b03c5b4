"""Reading the files a user hands the harness (profiles, network and drill profiles, env files, result.json,
credentials, manifests, DR state): every way such a file can be unreadable or malformed becomes one `ConfigError`
naming the file, the place in it and the valid form, so the CLI prints one line and exits 2 instead of a traceback.

    read_text(path, what)     bytes → text: missing, a folder, unreadable, too big, binary (NUL bytes), not UTF-8
    parse_json(text, where)   text → JSON value: syntax, nesting deeper than MAX_DEPTH, NaN/Infinity (1e400 too),
                              integers beyond ±2^53, lone UTF-16 surrogates ("\\ud800": not text, cannot be written)
    parse_toml(text, where)   text → TOML table: syntax, nesting deeper than MAX_DEPTH, integers beyond 64 bits

TOML's `nan` and `inf` are left to the field validators: they know each field's valid range and say it.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

MAX_BYTES = 16 * 1024 * 1024
"""Largest configuration file read (a profile is a few KiB; this stops `harness run /dev/zero`)."""
MAX_DATA_BYTES = 1024 * 1024 * 1024
"""Largest data file read: result.json (an hour's soak run with many request names is tens of MiB) and
migrations (seed data)."""
MAX_DEPTH = 64
"""Deepest nesting of arrays and tables accepted (result.json nests about 8 deep; Python's parsers recurse)."""
MAX_JSON_INT = 2**53
"""JSON integers beyond ±2^53 lose precision in most readers (RFC 7493, I-JSON); none of the harness's counts
comes near it."""
TOML_INT_RANGE = (-(2**63), 2**63 - 1)
"""TOML integers are 64-bit (toml.io: "an error must be thrown" for others); tomllib itself accepts more."""
_SURROGATE = re.compile("[\ud800-\udfff]")


def read_text(path: str | Path, what: str, *, max_bytes: int = MAX_BYTES) -> str:
    """The file's text; `what` names the kind of file in messages (e.g. "profile", "env file").

    A UTF-8 byte-order mark is dropped (editors on Windows write one)."""
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise ConfigError(f"{path}: {what} is larger than {max_bytes // (1024 * 1024)} MiB; is it the right file?")
    nul = data.find(b"\0")
    if nul >= 0:
        raise ConfigError(f"{path}: not a text file (a NUL byte at offset {nul}); expected a UTF-8 {what}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}: line {line}: byte 0x{data[exc.start]:02x} at offset {exc.start} is not UTF-8; "
            f"save the {what} as UTF-8 text"
        ) from None


def parse_json(text: str, where: str) -> Any:
    """A JSON value whose numbers are finite and within ±2^53, strings are text and nesting is bounded."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply (more than {MAX_DEPTH} levels of arrays and objects)") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4,300 digits
        raise ConfigError(f"{where}: not valid JSON: {exc}") from None
    _check(data, where, _json_leaf)
    return data


def parse_toml(text: str, where: str) -> dict[str, Any]:
    """A TOML document's table, with bounded nesting and 64-bit integers."""
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply (more than {MAX_DEPTH} levels of arrays and tables)") from None
    except ValueError as exc:  # TOMLDecodeError, or an integer of more than 4,300 digits
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    _check(data, where, _toml_leaf)
    return data


def show_value(value: Any, limit: int = 60) -> str:
    """A value for a message: JSON-like, cut at `limit` characters (big integers and deep tables included)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**limit:
        digits = math.floor(abs(value).bit_length() * math.log10(2)) + 1
        return f"{'-' if value < 0 else ''}an integer of about {digits} digits"
    try:
        shown = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):  # big integers inside, or nested deeper than json recurses
        shown = "a table" if isinstance(value, dict) else "a list" if isinstance(value, list) else repr(value)
    if _SURROGATE.search(shown):
        shown = shown.encode("utf-8", "backslashreplace").decode("utf-8")
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _path(parts: list[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out or "(top level)"


def _json_leaf(value: Any) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "is not a finite number (JSON has no NaN or Infinity; a number beyond ±1.8e308 reads as one)"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_JSON_INT:
        return f"is out of range: JSON integers here must be within ±2^53 ({MAX_JSON_INT})"
    if isinstance(value, str) and not value.isascii() and _SURROGATE.search(value):
        return "holds a lone UTF-16 surrogate (e.g. \\ud800), which is not text"
    return None


def _toml_leaf(value: Any) -> str | None:
    low, high = TOML_INT_RANGE
    if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
        return "is out of range: TOML integers are 64-bit (-2^63 to 2^63-1)"
    return None


def _check(data: Any, where: str, leaf: Any) -> None:
    """Walks the parsed value without recursion (the value may be as deep as the parser allowed)."""
    stack: list[tuple[Any, list[str | int]]] = [(data, [])]
    while stack:
        value, parts = stack.pop()
        if isinstance(value, dict | list):
            if len(parts) >= MAX_DEPTH:
                raise ConfigError(f"{where}: {_path(parts)}: nested more than {MAX_DEPTH} levels deep")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    problem = leaf(key)
                    if problem:
                        raise ConfigError(f"{where}: {_path(parts)}: the key {show_value(key)} {problem}")
                stack.append((item, [*parts, key]))
            continue
        problem = leaf(value)
        if problem:
            raise ConfigError(f"{where}: {_path(parts)}: {show_value(value)} {problem}")
