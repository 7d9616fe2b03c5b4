"""A request's query string resolved against the schema cache: which table (or function result) each level of the
select reads, through which foreign key, with which filters, order and page.

    Node (root: the table, or a function's rows)
      ├─ items     select list (columns, casts, JSON paths, *)
      ├─ where     conditions and logic trees on this level
      ├─ order, limit, offset
      └─ embeds    label → Node over a foreign key (many-to-one / one-to-one: an object; one-to-many: an array)

Resolution is where unknown names stop: 42703 for a column, PGRST200/201 for an embed that matches no or several
foreign keys, PGRST108 for a filter on something that is not embedded. sql.py renders the result.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from harness.refstack.region.rest import syntax
from harness.refstack.region.rest.errors import ApiError, bad_query, undefined_column
from harness.refstack.region.rest.schema_cache import SCHEMA, Column, ForeignKey, SchemaCache
from harness.refstack.region.rest.syntax import ColumnItem, Condition, EmbedItem, Field, Logic, OrderTerm, StarItem

RESERVED = frozenset({"select", "order", "limit", "offset", "columns", "on_conflict", "apikey"})
"""Query parameters that are not filters (`apikey` is Kong's, read by the gateway check)."""
_LEVEL_PARAMS = frozenset({"order", "limit", "offset"})


@dataclass
class Node:
    name: str
    """The table (or function) name, as error messages show it."""
    alias: str
    columns: dict[str, Column]
    items: list[syntax.SelectItem] = field(default_factory=list)
    where: list[Condition | Logic] = field(default_factory=list)
    order: list[OrderTerm] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None
    embeds: dict[str, Embed] = field(default_factory=dict)

    def column(self, name: str) -> Column:
        found = self.columns.get(name)
        if found is None:
            raise undefined_column(self.name, name)
        return found

    def check_field(self, target: Field) -> Column:
        return self.column(target.column)


@dataclass
class Embed:
    node: Node
    foreign_key: ForeignKey
    cardinality: str
    inner: bool
    parent_columns: tuple[str, ...]
    child_columns: tuple[str, ...]
    """Join condition: child.child_columns[i] = parent.parent_columns[i]."""

    @property
    def to_one(self) -> bool:
        return self.cardinality in ("many-to-one", "one-to-one")


class Planner:
    """Builds the Node tree of one request; aliases `_0`, `_1`, … are unique within its statement."""

    def __init__(self, cache: SchemaCache) -> None:
        self.cache = cache
        self._ids = itertools.count()

    def alias(self) -> str:
        return f"_{next(self._ids)}"

    def root(self, name: str, columns: dict[str, Column], select: str | None, *, table: str | None = None) -> Node:
        """The request's own level: a table (`table` = its name, so it can embed) or a function's result."""
        node = Node(name, self.alias(), columns)
        items: list[syntax.SelectItem] = syntax.parse_select(select) if select is not None else [StarItem()]
        self._attach(node, table, items)
        return node

    def _attach(self, node: Node, table: str | None, items: list[syntax.SelectItem]) -> None:
        for item in items:
            if isinstance(item, ColumnItem):
                node.check_field(item.field)
            elif isinstance(item, EmbedItem):
                if table is None:
                    raise _no_relationship(node.name, item.target, item.hint)
                if item.label in node.embeds:
                    raise bad_query(
                        f'"failed to parse select parameter ({item.label})"', f"{item.label!r} is embedded twice"
                    )
                node.embeds[item.label] = self._embed(node, table, item)
        node.items = items

    def _embed(self, parent: Node, parent_table: str, item: EmbedItem) -> Embed:
        fk, cardinality, child = self._relationship(parent_table, item)
        table = self.cache.tables[child]
        node = Node(child, self.alias(), table.columns)
        self._attach(node, child, item.items or [StarItem()])
        if cardinality == "many-to-one":
            parent_columns, child_columns = fk.columns, fk.ref_columns
        else:
            parent_columns, child_columns = fk.ref_columns, fk.columns
        return Embed(node, fk, cardinality, item.inner, parent_columns, child_columns)

    def _relationship(self, parent: str, item: EmbedItem) -> tuple[ForeignKey, str, str]:
        """PostgREST's rules: embed a table related by a foreign key, or name the key (or its column) directly."""
        target = item.target
        if target in self.cache.tables:
            candidates = [(fk, card, target) for fk, card in self.cache.relationships(parent, target)]
            if item.hint is not None:
                candidates = [c for c in candidates if _matches_hint(c[0], c[1], item.hint)]
        else:
            candidates = [
                (fk, "many-to-one", fk.ref_table)
                for fk in self.cache.foreign_keys
                if fk.table == parent and (fk.name == target or fk.columns == (target,))
            ]
        if not candidates:
            raise _no_relationship(parent, target, item.hint)
        if len(candidates) > 1:
            raise _ambiguous(parent, target, candidates)
        return candidates[0]

    # -- query parameters ------------------------------------------------------------------------------------------
    def apply_params(self, root: Node, params: Iterable[tuple[str, str]]) -> None:
        """Filters, logic trees and per-level order/limit/offset, each placed on the level its key names."""
        for key, raw in params:
            if key in RESERVED and key not in _LEVEL_PARAMS:
                continue
            parts = key.split(".")
            negate = len(parts) >= 2 and parts[-2] == "not" and parts[-1] in syntax.LOGIC
            if parts[-1] in syntax.LOGIC:
                path = parts[:-2] if negate else parts[:-1]
                node = self._level(root, path)
                logic = syntax.parse_logic(parts[-1], raw, negate=negate)
                self._check_logic(node, logic)
                node.where.append(logic)
            elif parts[-1] in _LEVEL_PARAMS:
                node = self._level(root, parts[:-1])
                if parts[-1] == "order":
                    node.order = syntax.parse_order(raw)
                    for term in node.order:
                        node.check_field(term.field)
                elif parts[-1] == "limit":
                    node.limit = syntax.non_negative("limit", raw)
                else:
                    node.offset = syntax.non_negative("offset", raw)
            else:
                node = self._level(root, parts[:-1])
                condition = syntax.parse_condition(syntax.parse_field(parts[-1]), raw)
                node.check_field(condition.field)
                node.where.append(condition)

    def _level(self, root: Node, path: list[str]) -> Node:
        node = root
        for label in path:
            embed = node.embeds.get(label)
            if embed is None:
                raise ApiError(
                    400,
                    "PGRST108",
                    f"'{label}' is not an embedded resource in this request",
                    hint=f"Verify that '{label}' is included in the 'select' query parameter.",
                )
            node = embed.node
        return node

    def _check_logic(self, node: Node, logic: Logic) -> None:
        for item in logic.items:
            if isinstance(item, Logic):
                self._check_logic(node, item)
            else:
                node.check_field(item.field)


def _matches_hint(fk: ForeignKey, cardinality: str, hint: str) -> bool:
    if fk.name == hint:
        return True
    return fk.columns == (hint,) or fk.ref_columns == (hint,)


def _no_relationship(parent: str, child: str, hint: str | None) -> ApiError:
    using = f"' using the hint '{hint}" if hint else ""
    return ApiError(
        400,
        "PGRST200",
        f"Could not find a relationship between '{parent}' and '{child}' in the schema cache",
        details=f"Searched for a foreign key relationship between '{parent}' and '{child}{using}' "
        f"in the schema '{SCHEMA}', but no matches were found.",
    )


def _ambiguous(parent: str, child: str, candidates: list[tuple[ForeignKey, str, str]]) -> ApiError:
    details = []
    for fk, cardinality, _ in candidates:
        own, other = (fk.table, fk.ref_table)
        details.append(
            {
                "cardinality": cardinality,
                "embedding": f"{parent} with {child}",
                "relationship": f"{fk.name} using {own}({', '.join(fk.columns)}) and "
                f"{other}({', '.join(fk.ref_columns)})",
            }
        )
    hints = ", ".join(f"'{child}!{fk.name}'" for fk, _, _ in candidates)
    return ApiError(
        300,
        "PGRST201",
        f"Could not embed because more than one relationship was found for '{parent}' and '{child}'",
        details=details,
        hint=f"Try changing '{child}' to one of the following: {hints}. Find the desired relationship in the "
        "'details' key.",
    )


def walk(node: Node) -> Iterator[Node]:
    yield node
    for embed in node.embeds.values():
        yield from walk(embed.node)
