"""postgres_changes filters: `column=op.value`, with op one of eq, neq, lt, lte, gt, gte, in (`in.(a,b,c)`).

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


def _operand(normalise: Callable[[Any], Any], type_name: str, text: str) -> Any:
    try:
        return normalise(text)
    except (ValueError, TypeError, OverflowError, RecursionError):
        sql_name = _SQL_NAMES.get(type_name, type_name)
        raise FilterError(f'invalid input syntax for type {sql_name}: "{text}"') from None


def parse(text: str, table: Table) -> RowFilter:
    """Parse a filter for `table`; FilterError naming the problem otherwise."""
    column, sep, rest = text.partition("=")
    op, dot, value = rest.partition(".")
    if not sep or not dot or not column:
        raise FilterError(f"filter {text!r} is not of the form {VALID_FORM}")
    if column not in table.by_name:
        raise FilterError(f"filter {text!r}: table {table.name!r} has no column {column!r}")
    if op != "in" and op not in _COMPARE:
        raise FilterError(f"filter {text!r}: unknown operator {op!r}; use {VALID_FORM}")
    type_name = table.by_name[column].type_name
    normalise = normaliser(type_name)
    try:
        if op == "in":
            if not (value.startswith("(") and value.endswith(")")):
                raise FilterError(f"filter {text!r}: `in` takes a list, e.g. {column}=in.(a,b)")
            items = [item.strip().strip('"') for item in value[1:-1].split(",") if item.strip()]
            operands = [_operand(normalise, type_name, item) for item in items]
            try:
                return RowFilter(column, op, frozenset(operands), normalise)
            except TypeError:
                raise FilterError(f"filter {text!r}: `in` cannot compare {type_name} values") from None
        return RowFilter(column, op, _operand(normalise, type_name, value), normalise)
    except FilterError as exc:
        if str(exc).startswith("filter "):
            raise
        raise FilterError(f"filter {text!r}: {exc}") from None
