"""The request headers PostgREST reads besides the JWT: Prefer, Accept and Range."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

from harness.refstack.region.rest.errors import ApiError

SINGULAR_TYPES = ("application/vnd.pgrst.object+json", "application/vnd.pgrst.object")
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
_RANGE = re.compile(r"^\s*(\d{1,18})-(\d{1,18})?\s*$")

Return = Literal["minimal", "headers-only", "representation"]
Output = Literal["json", "singular", "csv"]


_ACCEPTED = frozenset({
    "resolution=merge-duplicates", "resolution=ignore-duplicates",
    "return=representation", "return=minimal", "return=headers-only",
    "count=exact", "count=planned", "count=estimated",
    "tx=commit", "tx=rollback",
    "missing=default", "missing=null",
    "handling=strict", "handling=lenient",
})  # fmt: skip
"""The preferences PostgREST (12+) recognises; `timezone=` and `max-affected=` are recognised by prefix."""


@dataclass
class Prefer:
    returning: Return = "minimal"
    count: Literal["exact", "planned", "estimated"] | None = None
    resolution: Literal["merge", "ignore"] | None = None
    missing_default: bool = False
    single_object: bool = False
    returning_given: bool = False
    missing_given: str | None = None
    tx: Literal["commit", "rollback"] | None = None
    strict: bool | None = None
    max_affected: int | None = None
    invalid: list[str] = field(default_factory=list)

    @property
    def guards_affected(self) -> bool:
        """`max-affected` only binds with `handling=strict` (PostgREST 12+)."""
        return self.strict is True and self.max_affected is not None

    def check_strict(self) -> None:
        """With `handling=strict`, any preference PostgREST does not recognise is 400 PGRST122."""
        if self.strict and self.invalid:
            raise ApiError(
                400,
                "PGRST122",
                "Invalid preferences given with handling=strict",
                details="Invalid preferences: " + ", ".join(self.invalid),
            )

    def applied(self, plan: Literal["read", "create", "update", "delete", "call"], *, resolvable: bool = True) -> str:
        """The Preference-Applied value: what was honoured, in PostgREST's order and per kind of request."""
        out: list[str] = []
        if plan == "create" and self.resolution and resolvable:
            out.append(f"resolution={self.resolution}-duplicates")
        if plan in ("create", "update") and self.missing_given:
            out.append(f"missing={self.missing_given}")
        if plan in ("create", "update", "delete") and self.returning_given:
            out.append(f"return={self.returning}")
        if self.count:
            out.append(f"count={self.count}")
        if self.tx:
            out.append(f"tx={self.tx}")
        if self.strict is not None:
            out.append("handling=strict" if self.strict else "handling=lenient")
        if plan in ("update", "delete", "call") and self.guards_affected:
            out.append(f"max-affected={self.max_affected}")
        return ", ".join(out)


def _first(items: list[str], prefix: str, values: tuple[str, ...]) -> str | None:
    """PostgREST's parsePrefs: the first listed preference among `values`."""
    return next((i[len(prefix) :] for i in items if i.startswith(prefix) and i[len(prefix) :] in values), None)


def prefer(request: web.Request) -> Prefer:
    """Every `Prefer` header's comma-separated items; unknown or malformed ones are ignored (and listed in
    `invalid`, refused only with `handling=strict`), as PostgREST does. `tx` is honoured as PostgREST's
    `db-tx-end = commit-allow-override` does; `params=single-object` is kept for PostgREST 11's clients."""
    items = [i.strip() for header in request.headers.getall("Prefer", ()) for i in header.split(",")]
    items = [i for i in items if i]
    found = Prefer()
    if (returning := _first(items, "return=", ("representation", "minimal", "headers-only"))) is not None:
        found.returning, found.returning_given = returning, True  # type: ignore[assignment]
    found.count = _first(items, "count=", ("exact", "planned", "estimated"))  # type: ignore[assignment]
    resolution = _first(items, "resolution=", ("merge-duplicates", "ignore-duplicates"))
    if resolution is not None:
        found.resolution = "merge" if resolution == "merge-duplicates" else "ignore"
    found.missing_given = _first(items, "missing=", ("default", "null"))
    found.missing_default = found.missing_given == "default"
    found.tx = _first(items, "tx=", ("commit", "rollback"))  # type: ignore[assignment]
    handling = _first(items, "handling=", ("strict", "lenient"))
    found.strict = None if handling is None else handling == "strict"
    affected = next((i[len("max-affected=") :] for i in items if i.startswith("max-affected=")), None)
    if affected is not None and affected.lstrip("-").isdigit() and len(affected) < 19:
        found.max_affected = int(affected)
    found.single_object = "params=single-object" in items
    found.invalid = [i for i in items if i not in _ACCEPTED and not i.startswith(("timezone=", "max-affected="))]
    return found


def output(request: web.Request) -> Output:
    """The response media type from Accept (first acceptable type wins); none acceptable is 406 PGRST107."""
    accept = request.headers.get("Accept", "").strip()
    if not accept:
        return "json"
    offered = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    for media in offered:
        if media in SINGULAR_TYPES:
            return "singular"
        if media in (JSON_TYPE, "*/*", "application/*", "application/geo+json") or media.endswith("+json"):
            return "json"
        if media in (CSV_TYPE, "text/*"):
            return "csv"
    raise ApiError(406, "PGRST107", "None of these media types are available: " + ", ".join(offered))


def content_type(kind: Output) -> str:
    if kind == "singular":
        return SINGULAR_TYPES[0] + "; charset=utf-8"
    if kind == "csv":
        return CSV_TYPE + "; charset=utf-8"
    return JSON_TYPE + "; charset=utf-8"


def page(request: web.Request, limit: int | None, offset: int | None) -> tuple[int | None, int]:
    """limit/offset narrowed by a `Range: first-last` header (Range-Unit: items), as PostgREST intersects them."""
    start = offset or 0
    header = request.headers.get("Range")
    match = _RANGE.match(header) if header else None
    if match is None:
        return limit, start
    first = int(match[1])
    last = int(match[2]) if match[2] is not None else None
    if last is not None and last < first:
        raise ApiError(
            416,
            "PGRST103",
            "Requested range not satisfiable",
            details="The lower boundary must be lower than or equal to the upper boundary in the Range header.",
        )
    new_start = max(start, first)
    ends = [e for e in (None if limit is None else start + limit, None if last is None else last + 1) if e is not None]
    new_limit = max(0, min(ends) - new_start) if ends else None
    return new_limit, new_start
