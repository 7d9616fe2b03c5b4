"""Render a planned request as ONE parameterised statement whose JSON body Postgres builds.

Values only ever travel as parameters (`$n::text::<column type>`: Postgres parses them with the column type's own
input function, so a bad value is its 22P02, not ours); identifiers come from the schema cache and are quoted with
`ident`; type names in casts come from the catalog or pass syntax.py's strict pattern. Identical request shapes
give identical SQL text, so asyncpg's per-connection statement cache prepares each shape once.

    read      WITH _pgrst_t AS (SELECT <items> FROM "public"."t" AS "_0" <embeds> WHERE … ORDER BY … LIMIT $n)
              SELECT coalesce(json_agg(_pgrst_t), '[]')::text, count(*) [, (SELECT count(*) …)] FROM _pgrst_t
    write     WITH _pgrst_src AS (INSERT|UPDATE|DELETE … RETURNING "_0".*), _pgrst_t AS (<items> FROM _pgrst_src) …
    embeds    LEFT JOIN LATERAL (SELECT row_to_json(_e) …) for to-one, (SELECT json_agg(_e) …) for to-many;
              !inner joins them with JOIN (to-many: HAVING count(*) > 0), dropping the parent rows without one
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.refstack.region.rest import syntax
from harness.refstack.region.rest.plan import Embed, Node
from harness.refstack.region.rest.schema_cache import SCHEMA, Column
from harness.refstack.region.rest.syntax import ColumnItem, Condition, EmbedItem, Field, Logic, StarItem

_COMPARE = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_PATTERN = {"like": "LIKE", "ilike": "ILIKE", "match": "~", "imatch": "~*"}
_CONTAINMENT = {"cs": "@>", "cd": "<@", "ov": "&&", "sl": "<<", "sr": ">>", "nxr": "&<", "nxl": "&>", "adj": "-|-"}
_FULL_TEXT = {
    "fts": "to_tsquery",
    "plfts": "plainto_tsquery",
    "phfts": "phraseto_tsquery",
    "wfts": "websearch_to_tsquery",
}
_IS = {"null": "NULL", "not_null": "NOT NULL", "true": "TRUE", "false": "FALSE", "unknown": "UNKNOWN"}
ROWS = "_pgrst_t"


def ident(name: str) -> str:
    """A quoted SQL identifier: `a"b` → `"a""b"`."""
    return '"' + name.replace('"', '""') + '"'


def qualified(name: str) -> str:
    return f"{ident(SCHEMA)}.{ident(name)}"


@dataclass
class Params:
    values: list[Any] = field(default_factory=list)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"

    def text(self, value: str) -> str:
        return f"{self.add(value)}::text"


# -- expressions --------------------------------------------------------------------------------------------------
def field_sql(node: Node, target: Field, params: Params) -> tuple[str, str]:
    """The SQL of a column or JSON path on `node`, and the type a compared value is cast to."""
    column = node.column(target.column)
    expr = f"{ident(node.alias)}.{ident(column.name)}"
    if not target.path:
        return expr, column.type
    for arrow, key in target.path:
        is_index = key.lstrip("-").isdigit() and len(key) < 10
        key_sql = f"{params.add(int(key))}::int" if is_index else params.text(key)
        expr = f"({expr}{arrow}{key_sql})"
    return expr, "text" if target.path[-1][0] == "->>" else "jsonb"


def condition_sql(node: Node, condition: Condition, params: Params) -> str:
    expr, type_ = field_sql(node, condition.field, params)
    op, value, modifier = condition.op, condition.value, condition.modifier
    if op == "is":
        sql = f"{expr} IS {_IS[value.lower()]}"
    elif op == "in":
        sql = f"{expr} = ANY({params.add(syntax.in_list(value))}::text[]::{type_}[])"
    elif op in _COMPARE or op in _PATTERN:
        pattern = op in _PATTERN
        left = f"{expr}::text" if pattern else expr
        symbol = _PATTERN[op] if pattern else _COMPARE[op]
        cast = "text" if pattern else type_
        if op in ("like", "ilike"):
            value = value.replace("*", "%")
        if modifier in ("any", "all"):
            sql = f"{left} {symbol} {modifier.upper()}({params.text(value)}::{cast}[])"
        else:
            sql = f"{left} {symbol} {params.text(value)}::{cast}"
    elif op == "isdistinct":
        sql = f"{expr} IS DISTINCT FROM {params.text(value)}::{type_}"
    elif op in _FULL_TEXT:
        config = f"{params.text(modifier)}::regconfig, " if modifier else ""
        column = node.column(condition.field.column)
        document = (
            expr if column.base == "tsvector" and not condition.field.path else f"to_tsvector({config}{expr}::text)"
        )
        sql = f"{document} @@ {_FULL_TEXT[op]}({config}{params.text(value)})"
    else:
        sql = f"{expr} {_CONTAINMENT[op]} {params.text(value)}::{type_}"
    return f"NOT ({sql})" if condition.negate else sql


def logic_sql(node: Node, logic: Logic, params: Params) -> str:
    parts = [where_item_sql(node, item, params) for item in logic.items]
    empty = "FALSE" if logic.op == "or" else "TRUE"  # an empty OR matches nothing, an empty AND everything
    sql = "(" + f" {logic.op.upper()} ".join(parts) + ")" if parts else empty
    return f"NOT {sql}" if logic.negate else sql


def where_item_sql(node: Node, item: Condition | Logic, params: Params) -> str:
    return logic_sql(node, item, params) if isinstance(item, Logic) else condition_sql(node, item, params)


def where_sql(node: Node, params: Params, extra: list[str] | None = None) -> str:
    parts = list(extra or []) + [where_item_sql(node, item, params) for item in node.where]
    return " WHERE " + " AND ".join(parts) if parts else ""


def order_sql(node: Node, params: Params) -> str:
    terms = []
    for term in node.order:
        expr, _ = field_sql(node, term.field, params)
        sql = f"{expr} {'DESC' if term.descending else 'ASC'}"
        if term.nulls_first is not None:
            sql += " NULLS FIRST" if term.nulls_first else " NULLS LAST"
        terms.append(sql)
    return " ORDER BY " + ", ".join(terms) if terms else ""


def page_sql(node: Node, params: Params) -> str:
    sql = ""
    if node.limit is not None:
        sql += f" LIMIT {params.add(node.limit)}::bigint"
    if node.offset:
        sql += f" OFFSET {params.add(node.offset)}::bigint"
    return sql


# -- select lists and embeds ----------------------------------------------------------------------------------------
def _lateral_alias(embed: Embed) -> str:
    return ident(embed.node.alias + "_e")


def items_sql(node: Node, params: Params) -> str:
    parts: list[str] = []
    for item in node.items:
        if isinstance(item, StarItem):
            parts.append(f"{ident(node.alias)}.*")
        elif isinstance(item, ColumnItem):
            expr, _ = field_sql(node, item.field, params)
            if item.cast:
                expr = f"({expr})::{item.cast}"
            parts.append(f"{expr} AS {ident(item.alias or item.field.output_name)}")
        elif isinstance(item, EmbedItem):
            embed = node.embeds[item.label]
            body = f"{_lateral_alias(embed)}.body"
            parts.append(f"{body if embed.to_one else f'coalesce({body}, {_EMPTY})'} AS {ident(item.label)}")
    return ", ".join(parts) if parts else "NULL"


_EMPTY = "'[]'::json"


def joins_sql(node: Node, params: Params) -> str:
    return "".join(_join_sql(node, embed, params) for embed in node.embeds.values())


def _join_sql(parent: Node, embed: Embed, params: Params) -> str:
    child = embed.node
    link = [
        f"{ident(child.alias)}.{ident(c)} = {ident(parent.alias)}.{ident(p)}"
        for c, p in zip(embed.child_columns, embed.parent_columns, strict=True)
    ]
    inner = (
        f"SELECT {items_sql(child, params)} FROM {qualified(child.name)} AS {ident(child.alias)}"
        f"{joins_sql(child, params)}{where_sql(child, params, link)}"
    )
    if embed.to_one:
        body = f"SELECT row_to_json(_e) AS body FROM ({inner}) AS _e"
    else:
        inner += order_sql(child, params) + page_sql(child, params)
        having = " HAVING count(*) > 0" if embed.inner else ""
        body = f"SELECT json_agg(_e) AS body FROM ({inner}) AS _e{having}"
    join = "JOIN" if embed.inner else "LEFT JOIN"
    return f" {join} LATERAL ({body}) AS {_lateral_alias(embed)} ON TRUE"


def rows_sql(node: Node, source: str, params: Params, *, filtered: bool = True) -> str:
    """SELECT of the root level's rows from `source` (a table, a CTE or a function call); unfiltered for the rows
    a write returns (they already are the ones its WHERE picked)."""
    sql = f"SELECT {items_sql(node, params)} FROM {source} AS {ident(node.alias)}{joins_sql(node, params)}"
    if filtered:
        sql += where_sql(node, params) + order_sql(node, params) + page_sql(node, params)
    return sql


def count_sql(node: Node, source: str, params: Params, *, what: str = "count(*)") -> str:
    """The root level's rows before limit and offset, counted (Prefer: count=exact) or, with what="1", listed for
    the planner's estimate (count=planned)."""
    inner_joins = "".join(_join_sql(node, e, params) for e in node.embeds.values() if e.inner)
    return f"SELECT {what} FROM {source} AS {ident(node.alias)}{inner_joins}{where_sql(node, params)}"


# -- whole statements --------------------------------------------------------------------------------------------
def body_sql(*, csv: bool, scalar: str | None = None) -> str:
    """The aggregate that turns `_pgrst_t`'s rows into the response body (JSON array, scalars, or CSV)."""
    if scalar is not None:
        return f"coalesce(json_agg({ROWS}.{ident(scalar)}), {_EMPTY})::text"
    if csv:
        header = (
            f"(SELECT coalesce(string_agg(_k, ','), '') FROM json_object_keys("
            f"(SELECT row_to_json(_r) FROM {ROWS} AS _r LIMIT 1)) AS _k)"
        )
        line = f"substring({ROWS}::text, 2, length({ROWS}::text) - 2)"
        return f"{header} || chr(10) || coalesce(string_agg({line}, chr(10)), '')"
    return f"coalesce(json_agg({ROWS}), {_EMPTY})::text"


def read_statement(
    node: Node, source: str, params: Params, *, count: bool, csv: bool, scalar: str | None = None, ctes: str = ""
) -> str:
    rows = rows_sql(node, source, params)
    total = f", ({count_sql(node, source, params)}) AS total" if count else ", NULL::bigint AS total"
    return (
        f"WITH {ctes}{ROWS} AS ({rows}) "
        f"SELECT {body_sql(csv=csv, scalar=scalar)} AS body, count(*) AS page{total} FROM {ROWS}"
    )


def insert_sql(
    node: Node,
    columns: list[Column],
    params: Params,
    *,
    body: str,
    missing_default: bool,
    on_conflict: tuple[str, ...] | None,
    resolution: str | None,
) -> str:
    table = qualified(node.name)
    names = ", ".join(ident(c.name) for c in columns)
    if missing_default:
        values = ", ".join(
            f"CASE WHEN _e.v ? {params.text(c.name)} THEN _r.{ident(c.name)} ELSE {c.default or 'NULL'} END"
            for c in columns
        )
        source = (
            f"jsonb_array_elements({body}) AS _e(v) CROSS JOIN LATERAL jsonb_populate_record(NULL::{table}, _e.v) AS _r"
        )
    else:
        values = ", ".join(f"_r.{ident(c.name)}" for c in columns)
        source = f"jsonb_populate_recordset(NULL::{table}, {body}) AS _r"
    target = f" ({names})" if columns else ""
    sql = f"INSERT INTO {table} AS {ident(node.alias)}{target} SELECT {values} FROM {source}"
    if resolution is not None:
        keys = ", ".join(ident(c) for c in on_conflict or ())
        conflict = f" ON CONFLICT ({keys})" if keys else " ON CONFLICT"
        if resolution == "ignore" or not columns:
            sql += f"{conflict} DO NOTHING"
        else:
            sets = ", ".join(f"{ident(c.name)} = EXCLUDED.{ident(c.name)}" for c in columns)
            sql += f"{conflict} DO UPDATE SET {sets}"
    return sql


def update_sql(node: Node, columns: list[Column], params: Params, *, body: str) -> str:
    table = qualified(node.name)
    sets = ", ".join(f"{ident(c.name)} = _r.{ident(c.name)}" for c in columns)
    return (
        f"UPDATE {table} AS {ident(node.alias)} SET {sets} "
        f"FROM jsonb_populate_record(NULL::{table}, {body}) AS _r{where_sql(node, params)}"
    )


def delete_sql(node: Node, params: Params) -> str:
    return f"DELETE FROM {qualified(node.name)} AS {ident(node.alias)}{where_sql(node, params)}"


def write_statement(write: str, node: Node, params: Params, *, csv: bool) -> str:
    """The write with RETURNING, its rows shaped by the select list (embeds included) into the body; the affected
    row count is the page count."""
    returning = f"{write} RETURNING {ident(node.alias)}.*"
    rows = rows_sql(node, "_pgrst_src", params, filtered=False)
    return (
        f"WITH _pgrst_src AS ({returning}), {ROWS} AS ({rows}) "
        f"SELECT {body_sql(csv=csv)} AS body, count(*) AS page, NULL::bigint AS total FROM {ROWS}"
    )
