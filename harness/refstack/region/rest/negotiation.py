"""The request headers PostgREST reads besides the JWT: Prefer, Accept and Range."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from harness.refstack.region.rest.errors import ApiError

SINGULAR_TYPES = ("application/vnd.pgrst.object+json", "application/vnd.pgrst.object")
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
_RANGE = re.compile(r"^\s*(\d{1,18})-(\d{1,18})?\s*$")

Return = Literal["minimal", "headers-only", "representation"]
Output = Literal["json", "singular", "csv"]


@dataclass
class Prefer:
    returning: Return = "minimal"
    count: Literal["exact", "planned", "estimated"] | None = None
    resolution: Literal["merge", "ignore"] | None = None
    missing_default: bool = False
    single_object: bool = False


def prefer(request: web.Request) -> Prefer:
    """Unknown or malformed preferences are ignored, as PostgREST does without `handling=strict`."""
    found = Prefer()
    for header in request.headers.getall("Prefer", ()):
        for item in header.split(","):
            key, _, value = item.strip().partition("=")
            value = value.strip()
            if key == "return" and value in ("minimal", "headers-only", "representation"):
                found.returning = value  # type: ignore[assignment]
            elif key == "count" and value in ("exact", "planned", "estimated"):
                found.count = value  # type: ignore[assignment]
            elif key == "resolution" and value in ("merge-duplicates", "ignore-duplicates"):
                found.resolution = "merge" if value == "merge-duplicates" else "ignore"
            elif key == "missing":
                found.missing_default = value == "default"
            elif key == "params":
                found.single_object = value == "single-object"
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
