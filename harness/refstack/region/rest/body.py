"""Request bodies: checked in Python just enough to plan the statement, then handed to Postgres as the raw text.

Python's json module parses to learn the keys (the insert's columns, "All object keys must match") and to refuse
what PostgREST's parser refuses before any SQL runs: invalid JSON, lone UTF-16 surrogates (`"\\ud800"`), nesting
too deep for a recursive parser, numbers with more digits than Python parses. Postgres then reads the same text as
jsonb (no re-encoding in Python); what jsonb itself refuses (`\\u0000` in text: 22P05) comes back as its 400.
"""

from __future__ import annotations

import json
import re
from typing import Any

from harness.refstack.region.rest.errors import bad_body

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse(raw: bytes) -> Any:
    """The body as Python values, or PGRST102."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(text)
    except UnicodeDecodeError:
        raise bad_body(details="the body is not UTF-8") from None
    except RecursionError:
        raise bad_body(details="the JSON body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and ints longer than sys.get_int_max_str_digits()
        raise bad_body(details=str(exc)) from None
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(value):
        raise bad_body(details="the JSON body contains a lone UTF-16 surrogate (\\ud800-\\udfff)")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    """json.loads joins valid surrogate pairs, so any surrogate left in a string or key is a lone one."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def text(raw: bytes) -> str:
    """The body as Postgres receives it (already validated by `parse`)."""
    return raw.decode("utf-8")


def as_array_text(raw: bytes, value: Any) -> str:
    """An insert's rows as a JSON array text: a single object is wrapped without re-encoding it."""
    body = raw.decode("utf-8")
    return body if isinstance(value, list) else f"[{body}]"
