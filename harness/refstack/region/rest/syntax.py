"""PostgREST's query-string grammar, parsed into plain values with no knowledge of the schema.

    select=id,name:title,metadata->a->>b,created_at::text,author:profiles!fk!inner(*)   SelectItem tree
    col=[not.]op[(modifier)].value                                                    Condition
    or=(a.eq.1,and(b.gt.2,c.is.null)), not.and=(...)                                  Logic tree
    order=col.desc.nullslast,metadata->>k                                             OrderTerm list

Anything malformed raises PGRST100 with the offending text, so nothing that fails to parse ever reaches SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.refstack.region.rest.errors import bad_query

OPERATORS = frozenset(
    {
        "eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch", "in", "is", "isdistinct",
        "fts", "plfts", "phfts", "wfts", "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj",
    }
)  # fmt: skip
QUANTIFIABLE = frozenset({"eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"})
FULL_TEXT = frozenset({"fts", "plfts", "phfts", "wfts"})
LOGIC = frozenset({"or", "and"})
_CAST = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*( [A-Za-z_][A-Za-z0-9_]*)*(\[\])?$")
_ARROW = re.compile(r"(->>|->)")
_MODIFIER = re.compile(r"^(?P<op>[a-z]+)(\((?P<mod>[^()]*)\))?$")


@dataclass(frozen=True)
class Field:
    """A column, optionally followed by a JSON path: `metadata->a->>b` is ("metadata", (("->", "a"), ("->>", "b")))."""

    column: str
    path: tuple[tuple[str, str], ...] = ()

    @property
    def output_name(self) -> str:
        """PostgREST names a JSON path column after its last key."""
        return self.path[-1][1] if self.path else self.column


@dataclass(frozen=True)
class ColumnItem:
    field: Field
    alias: str | None = None
    cast: str | None = None


@dataclass(frozen=True)
class StarItem:
    pass


@dataclass
class EmbedItem:
    """`alias:target!hint!inner(items)`: a related table, joined over a foreign key."""

    target: str
    alias: str | None
    hint: str | None
    inner: bool
    items: list[SelectItem]

    @property
    def label(self) -> str:
        return self.alias or self.target


SelectItem = ColumnItem | StarItem | EmbedItem


@dataclass(frozen=True)
class Condition:
    field: Field
    op: str
    value: str
    negate: bool = False
    modifier: str | None = None
    """`fts(english)` gives "english"; `eq(any)` gives "any"."""


@dataclass
class Logic:
    op: str  # "and" | "or"
    items: list[Condition | Logic] = field(default_factory=list)
    negate: bool = False


@dataclass(frozen=True)
class OrderTerm:
    field: Field
    descending: bool = False
    nulls_first: bool | None = None


def unquote(text: str) -> str:
    """`"a \\"b\\", c"` → `a "b", c` (PostgREST's double-quoted values and names)."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split at `sep` outside double quotes and parentheses (the quotes and escapes are kept)."""
    items: list[str] = []
    depth = 0
    quoted = False
    start = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
            if depth < 0:
                raise bad_query(f'"failed to parse ({text})"', "unbalanced parentheses")
        elif ch == sep and depth == 0:
            items.append(text[start:i])
            start = i + 1
        i += 1
    if quoted or depth:
        raise bad_query(f'"failed to parse ({text})"', "unterminated double quote or parenthesis")
    items.append(text[start:])
    return items


def name(text: str, what: str = "name") -> str:
    text = unquote(text.strip())
    if not text or not text.isprintable():
        raise bad_query(f'"failed to parse {what} ({text})"', f"not a valid {what}")
    return text


def parse_field(text: str) -> Field:
    """`col`, `"my col"`, `col->a->>b`, `arr->0`."""
    parts = _ARROW.split(text.strip())
    column = name(parts[0], "column name")
    path: list[tuple[str, str]] = []
    for i in range(1, len(parts), 2):
        key = parts[i + 1] if i + 1 < len(parts) else ""
        key = unquote(key.strip())
        if not key:
            raise bad_query(f'"failed to parse json path ({text})"', "a JSON path key is empty")
        path.append((parts[i], key))
    return Field(column, tuple(path))


def _cast(text: str) -> str:
    text = text.strip()
    if not _CAST.match(text):
        raise bad_query(f'"failed to parse cast ({text})"', "a cast is a type name such as text, int or uuid[]")
    return text


def _select_item(text: str) -> SelectItem:
    text = text.strip()
    if text == "*":
        return StarItem()
    if text.endswith(")") and "(" in text:
        head, _, inner = text[:-1].partition("(")
        alias, target = _split_alias(head)
        target_name, *bangs = target.split("!")
        hint: str | None = None
        inner_join = False
        for bang in bangs:
            if bang == "inner":
                inner_join = True
            elif bang == "left":
                inner_join = False
            elif hint is None:
                hint = name(bang, "embed hint")
            else:
                raise bad_query(f'"failed to parse select parameter ({text})"', "more than one embed hint")
        if target_name.startswith("..."):
            raise bad_query(f'"failed to parse select parameter ({text})"', "spread embeds (...) are not supported")
        items = parse_select(inner) if inner.strip() else []
        return EmbedItem(name(target_name, "embedded resource"), alias, hint, inner_join, items)
    if "(" in text or ")" in text:
        raise bad_query(f'"failed to parse select parameter ({text})"', "unbalanced parentheses")
    alias, rest = _split_alias(text)
    cast: str | None = None
    if "::" in rest:
        rest, _, cast_text = rest.rpartition("::")
        cast = _cast(cast_text)
    return ColumnItem(parse_field(rest), alias, cast)


def _split_alias(text: str) -> tuple[str | None, str]:
    """`alias:rest` (a single colon; `::` is a cast)."""
    i = 0
    while i < len(text):
        if text[i] == ":":
            if i + 1 < len(text) and text[i + 1] == ":":
                i += 2
                continue
            return name(text[:i], "alias"), text[i + 1 :]
        i += 1
    return None, text


def parse_select(text: str) -> list[SelectItem]:
    if not text.strip():
        return [StarItem()]
    return [_select_item(item) for item in split_top(text)]


def parse_condition(target: Field, raw: str) -> Condition:
    """`[not.]op[(mod)].value` for the column or JSON path `target`."""
    negate = False
    rest = raw
    if rest.startswith("not."):
        negate, rest = True, rest[4:]
    op_text, dot, value = rest.partition(".")
    match = _MODIFIER.match(op_text)
    if not dot or match is None or match["op"] not in OPERATORS:
        raise bad_query(
            f'"failed to parse filter ({raw})"',
            "expected [not.]operator.value with one of: " + ", ".join(sorted(OPERATORS)),
        )
    op, modifier = match["op"], match["mod"]
    if modifier is not None:
        if op in FULL_TEXT:
            modifier = name(modifier, "text search configuration")
        elif op in QUANTIFIABLE and modifier in ("any", "all"):
            pass
        else:
            raise bad_query(f'"failed to parse filter ({raw})"', f"{op} takes no modifier ({modifier})")
    if op == "in" and not (value.startswith("(") and value.endswith(")")):
        raise bad_query(f'"failed to parse filter ({raw})"', "in. takes a parenthesised list, e.g. in.(1,2,3)")
    if op == "is" and value.lower() not in ("null", "not_null", "true", "false", "unknown"):
        raise bad_query(f'"failed to parse filter ({raw})"', "is. takes null, not_null, true, false or unknown")
    return Condition(target, op, value, negate, modifier)


def in_list(value: str) -> list[str]:
    """The items of `(a,"b,c",d)`."""
    inner = value[1:-1]
    if not inner:
        return []
    return [unquote(item) for item in split_top(inner)]


def parse_logic(op: str, raw: str, *, negate: bool = False) -> Logic:
    """`(a.eq.1,or(b.gt.2,not.c.is.null))` for `op` = "or" or "and"."""
    if not (raw.startswith("(") and raw.endswith(")")):
        raise bad_query(f'"failed to parse logic tree ({raw})"', f"{op}= takes a parenthesised list")
    logic = Logic(op, negate=negate)
    for item in split_top(raw[1:-1]):
        item = item.strip()
        nested_negate = item.startswith("not.")
        body = item[4:] if nested_negate else item
        head = body.split("(", 1)[0]
        if head in LOGIC and body.endswith(")") and "(" in body:
            logic.items.append(parse_logic(head, body[len(head) :], negate=nested_negate))
            continue
        column, dot, condition = item.partition(".")
        if not dot:
            raise bad_query(f'"failed to parse logic tree ({raw})"', f"expected column.operator.value in {item!r}")
        parsed = parse_condition(parse_field(column), condition)
        if parsed.op != "in":
            parsed = Condition(parsed.field, parsed.op, unquote(parsed.value), parsed.negate, parsed.modifier)
        logic.items.append(parsed)
    return logic


def parse_order(raw: str) -> list[OrderTerm]:
    terms: list[OrderTerm] = []
    for term in split_top(raw):
        term = term.strip()
        if not term:
            continue
        head, *modifiers = term.split(".")
        descending = False
        nulls_first: bool | None = None
        for modifier in modifiers:
            if modifier in ("asc", "desc"):
                descending = modifier == "desc"
            elif modifier in ("nullsfirst", "nullslast"):
                nulls_first = modifier == "nullsfirst"
            else:
                raise bad_query(
                    f'"failed to parse order ({raw})"',
                    f"unknown modifier {modifier!r}; valid: asc, desc, nullsfirst, nullslast",
                )
        if "(" in head:
            raise bad_query(f'"failed to parse order ({raw})"', "ordering by an embedded resource is not supported")
        terms.append(OrderTerm(parse_field(head), descending, nulls_first))
    return terms


def non_negative(param: str, raw: str) -> int:
    try:
        value = int(raw) if raw.strip().isdigit() else -1
    except ValueError:
        value = -1
    if not 0 <= value < 2**63:
        raise bad_query(
            f'"failed to parse {param} parameter ({raw})"', f"{param} must be an integer from 0 to 9223372036854775807"
        )
    return value


def column_list(raw: str) -> list[str]:
    """`columns=` and `on_conflict=`: comma-separated, optionally double-quoted names."""
    return [name(item, "column name") for item in split_top(raw) if item.strip()]
