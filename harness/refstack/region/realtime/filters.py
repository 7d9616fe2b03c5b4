"""postgres_changes filters: `column=op.value`, with op one of eq, neq, lt, lte, gt, gte, in (`in.(a,b,c)`), parsed
as Realtime parses them (Extensions.PostgresCdcRls.Subscriptions.parse_subscription_params), with its errors.

The value is converted to the column's type once, at join time (with PostgreSQL's error text when it does not
fit, as Realtime reports it), and a changed row's value is converted the same way, so matching is one comparison.
Filters run in Python before the visibility check: only subscribers whose filter matches cost a query.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import operator
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.refstack.region.realtime.catalog import Table

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "neq": operator.ne,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}
VALID_FORM = "column=op.value with op one of eq, neq, lt, lte, gt, gte, in (e.g. conversation_id=eq.<uuid>)"
_TRUE = frozenset({"t", "true", "y", "yes", "on", "1"})
_FALSE = frozenset({"f", "false", "n", "no", "off", "0"})
_INT_RANGES = {"int2": 2**15, "int4": 2**31, "int8": 2**63}
_SQL_NAMES = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "float4": "real",
    "float8": "double precision",
    "bool": "boolean",
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
}


class FilterError(ValueError):
    """The filter cannot be used; the message names the filter and the valid form."""


def _uuid(value: Any) -> str:
    return str(uuid.UUID(str(value)))


def _int(type_name: str) -> Callable[[Any], int]:
    limit = _INT_RANGES[type_name]

    def convert(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError(value)
        number = value if isinstance(value, int) else int(str(value).strip())
        if not -limit <= number < limit:
            raise ValueError(value)
        return number

    return convert


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    return float(value)


def _numeric(value: Any) -> decimal.Decimal:
    if isinstance(value, bool):
        raise ValueError(value)
    try:
        return decimal.Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise ValueError(value) from None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(value)


def _timestamptz(value: Any) -> dt.datetime:
    moment = dt.datetime.fromisoformat(str(value).strip())
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment  # the session's TimeZone is UTC


def _timestamp(value: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(str(value).strip()).replace(tzinfo=None)


def _date(value: Any) -> dt.date:
    return dt.date.fromisoformat(str(value).strip())


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def normaliser(type_name: str) -> Callable[[Any], Any]:
    """One comparable form for a filter operand (text) and a record's value (JSON) of this column type."""
    if type_name == "uuid":
        return _uuid
    if type_name in _INT_RANGES:
        return _int(type_name)
    if type_name in ("float4", "float8"):
        return _float
    if type_name == "numeric":
        return _numeric
    if type_name == "bool":
        return _bool
    if type_name == "timestamptz":
        return _timestamptz
    if type_name == "timestamp":
        return _timestamp
    if type_name == "date":
        return _date
    if type_name in ("json", "jsonb"):
        return _json
    return str


@dataclass(frozen=True)
class RowFilter:
    column: str
    op: str
    value: Any
    """The converted operand; a frozenset for `in`."""
    normalise: Callable[[Any], Any]

    def row_value(self, row: dict[str, Any]) -> Any:
        """The row's value of the filtered column in comparable form; None when absent, NULL or unconvertible."""
        actual = row.get(self.column)
        if actual is None:
            return None
        try:
            return self.normalise(actual)
        except (ValueError, TypeError):
            return None

    def matches(self, row: dict[str, Any]) -> bool:
        actual = self.row_value(row)
        if actual is None:
            return False  # SQL: a comparison with NULL is never true
        if self.op == "in":
            try:
                return bool(actual in self.value)
            except TypeError:  # unhashable (a JSON object)
                return False
        try:
            return _COMPARE[self.op](actual, self.value)
        except TypeError:
            return False


class FilterSyntaxError(FilterError):
    """Refused by Realtime's parser (parse_subscription_params): reported as "Error parsing `filter` params: …"."""


class FilterSubscribeError(FilterError):
    """Parsed, but the subscription insert fails (realtime.subscription_check_filters, or the value's type): the
    message is PostgreSQL's error as Postgrex prints it, which Realtime puts after "Exception: "."""

    def __init__(self, message: str, op: str, value: str) -> None:
        super().__init__(message)
        self.op, self.value = op, value


NEWER_OPS = frozenset({"like", "ilike", "is", "match", "imatch", "isdistinct"})
"""Operators the newest Realtime also takes (with `not.` and comma-joined AND): refused here, named as not served."""
MAX_IN_VALUES = 100


def elixir_list(parts: list[str]) -> str:
    """How Elixir's inspect prints a list of strings: `["foo", "hey"]`."""
    return "[" + ", ".join(json.dumps(p, ensure_ascii=False) for p in parts) + "]"


def _unquote(value: str) -> str:
    """A value wrapped in double quotes loses them (backslash escapes one character), as unquote_value does."""
    if len(value) < 2 or not value.startswith('"') or not value.endswith('"'):
        return value
    out, i, body = [], 0, value[1:-1]
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            i += 1
        elif body[i] == '"':
            return value  # an unescaped quote inside: not one quoted value
        out.append(body[i])
        i += 1
    return "".join(out)


def _top_level_commas(text: str) -> bool:
    depth, quoted = 0, False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth = max(0, depth - 1)
        elif not quoted and char == "," and depth == 0:
            return True
    return False


def _operand(normalise: Callable[[Any], Any], type_name: str, text: str, op: str, raw: str) -> Any:
    try:
        return normalise(text)
    except (ValueError, TypeError, OverflowError, RecursionError):
        sql_name = _SQL_NAMES.get(type_name, type_name)
        message = f'ERROR 22P02 (invalid_text_representation) invalid input syntax for type {sql_name}: "{text}"'
        raise FilterSubscribeError(message, op, raw) from None


def parse(text: str, table: Table) -> RowFilter | None:
    """Parse a filter for `table` as Realtime does (None for an empty one); FilterSyntaxError where Realtime's
    parser refuses it, FilterSubscribeError where its subscription insert would fail, FilterError for forms the
    newest Realtime takes and this stand-in does not (newer operators, `not.`, several filters)."""
    text = text.strip()
    if not text:
        return None
    if _top_level_commas(text):
        raise FilterError(f"filter {text!r}: comma-joined filters are not served by this stand-in; {VALID_FORM}")
    column, sep, rest = text.partition("=")
    if not sep:
        raise FilterSyntaxError(elixir_list([text]))
    op_value = rest.removeprefix("not.")
    op, dot, value = op_value.partition(".")
    if not dot:
        raise FilterSyntaxError(elixir_list([op_value]))
    if op not in _COMPARE and op != "in" and op not in NEWER_OPS:
        raise FilterSyntaxError(elixir_list([op, value]))
    if op == "in" and not (len(value) >= 2 and value.startswith("(") and value.endswith(")")):
        raise FilterSyntaxError("`in` filter value must be wrapped by parentheses")
    if op in NEWER_OPS or op_value != rest:
        raise FilterError(
            f"filter {text!r}: {'not.' if op_value != rest else op} is not served by this stand-in; {VALID_FORM}"
        )
    raw = f"{{{value[1:-1]}}}" if op == "in" else _unquote(value)
    if column not in table.by_name:
        message = f"ERROR P0001 (raise_exception) invalid column for filter {column}"
        raise FilterSubscribeError(message, op, raw)
    type_name = table.by_name[column].type_name
    normalise = normaliser(type_name)
    if op != "in":
        return RowFilter(column, op, _operand(normalise, type_name, raw, op, raw), normalise)
    items = [_unquote(item.strip()) for item in value[1:-1].split(",") if item.strip()]
    if len(items) > MAX_IN_VALUES:
        message = "ERROR P0001 (raise_exception) too many values for `in` filter. Maximum 100"
        raise FilterSubscribeError(message, op, raw)
    operands = [_operand(normalise, type_name, item, op, raw) for item in items]
    try:
        return RowFilter(column, op, frozenset(operands), normalise)
    except TypeError:
        raise FilterError(f"filter {text!r}: `in` cannot compare {type_name} values") from None
