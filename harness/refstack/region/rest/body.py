"""Request bodies: checked in Python just enough to plan the statement, then handed to Postgres as the raw text.

The shared strict reader (harness/model/strict_json.py) parses to learn the keys (the insert's columns, "All
object keys must match") and refuses what PostgREST's parser (Aeson) refuses before any SQL runs: invalid JSON,
NaN and Infinity, lone UTF-16 surrogates (`"\\ud800"`), nesting too deep, numbers with more digits than Python
parses; all as PGRST102. Floats beyond a double (1e400) pass: Postgres reads the same text as jsonb, whose numeric
holds them, as it does behind PostgREST. What jsonb itself refuses (`\\u0000` in text: 22P05) comes back as its 400.
"""

from __future__ import annotations

from typing import Any

from harness.model import strict_json
from harness.refstack.region.rest.errors import bad_body


def parse(raw: bytes) -> Any:
    """The body as Python values, or PGRST102."""
    try:
        return strict_json.loads(raw, big_floats=True)
    except strict_json.JsonBodyError as exc:
        raise bad_body(details=exc.message) from None


def text(raw: bytes) -> str:
    """The body as Postgres receives it (already validated by `parse`)."""
    return raw.decode("utf-8")


def as_array_text(raw: bytes, value: Any) -> str:
    """An insert's rows as a JSON array text: a single object is wrapped without re-encoding it."""
    body = raw.decode("utf-8")
    return body if isinstance(value, list) else f"[{body}]"
