"""postgres_changes filters: `column=op.value`, with op one of eq, neq, lt, lte, gt, gte, in (`in.(a,b,c)`).

The value is coerced to the column's type once, at join time, so matching a change is one comparison.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.refstack.region.db import DbError, coerce
from harness.refstack.region.schema import Table

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "neq": operator.ne,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}
VALID_FORM = "column=op.value with op one of eq, neq, lt, lte, gt, gte, in (e.g. conversation_id=eq.<uuid>)"


class FilterError(ValueError):
    """The filter cannot be used; the message names the filter and the valid form."""


@dataclass(frozen=True)
class RowFilter:
    column: str
    op: str
    value: Any
    """The coerced operand; a frozenset for `in`."""

    def matches(self, row: dict[str, Any]) -> bool:
        actual = row.get(self.column)
        if actual is None:
            return False  # SQL: a comparison with NULL is never true
        if self.op == "in":
            return bool(actual in self.value)
        try:
            return _COMPARE[self.op](actual, self.value)
        except TypeError:
            return False


def _operand(table: Table, column: str, text: str) -> Any:
    value = coerce(table.by_name[column], text, from_text=True)
    if table.by_name[column].type == "bool":
        return bool(value)
    return value


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
    try:
        if op == "in":
            if not (value.startswith("(") and value.endswith(")")):
                raise FilterError(f"filter {text!r}: `in` takes a list, e.g. {column}=in.(a,b)")
            items = [item.strip().strip('"') for item in value[1:-1].split(",") if item.strip()]
            return RowFilter(column, op, frozenset(_operand(table, column, item) for item in items))
        return RowFilter(column, op, _operand(table, column, value))
    except DbError as exc:
        raise FilterError(f"filter {text!r}: {exc.message}") from None
