"""Which subscribers may see which changed rows, asked of the database as each of them (contract_realtime.sql).

One statement per batch of decoded changes, whatever the number of subscribers (two when a lookup fails and the
batch is asked again in `safe` mode): `realtime.visible_rows(checks, safe)`
becomes each subscriber in turn (role + request.jwt.claims, as PostgREST sets them) and looks its rows up by their
key, so grants and row-level security policies are Postgres's own: a subscriber sees a change exactly when a REST
read by it would return the row.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from harness.refstack.region.realtime import frames
from harness.refstack.region.realtime.changes import RelationInfo

_VISIBLE_ROWS = "select realtime.visible_rows($1::jsonb, $2)::text"
SAFE_LOG_EVERY_S = 60.0
"""A batch asked again in safe mode is logged at most this often (one subscriber whose policies fail would otherwise
log every batch)."""

log = logging.getLogger(__name__)
_last_safe_log = 0.0


@dataclass
class Check:
    """Rows of one table to look up as one subscriber identity."""

    relation: RelationInfo
    claims_json: str
    """The identity's JWT claims, serialized."""
    rows: list[tuple[str | None, ...]] = field(default_factory=list)
    """Each row's key values as text, in the relation's key column order."""

    def to_json(self) -> str:
        key = frames.dumps(list(self.relation.key_names))
        return (
            f'{{"entity":{self.relation.oid},"key":{key},"claims":{self.claims_json},"rows":{frames.dumps(self.rows)}}}'
        )


def claims_json(raw: dict[str, object]) -> str:
    return json.dumps(raw, separators=(",", ":"))


async def visible(pool: asyncpg.Pool, checks: Sequence[Check]) -> list[set[int]]:
    """For each check, the indexes of its rows that its identity can SELECT now."""
    asked = [c for c in checks if c.rows and c.relation.key]
    if not asked:
        return [set() for _ in checks]
    batch = "[" + ",".join(c.to_json() for c in asked) + "]"
    try:
        answer = json.loads(await pool.fetchval(_VISIBLE_ROWS, batch, False))
    except asyncpg.PostgresError as exc:
        # A subscriber's lookup failed (its grants, a claim its policies cannot read): again with each check in its
        # own subtransaction, so that one sees nothing and the others still see their rows.
        _log_safe(exc)
        answer = json.loads(await pool.fetchval(_VISIBLE_ROWS, batch, True))
    by_check = {id(c): set(found) for c, found in zip(asked, answer, strict=True)}
    return [by_check.get(id(c), set()) for c in checks]


def _log_safe(exc: asyncpg.PostgresError) -> None:
    global _last_safe_log
    now = time.monotonic()
    if now - _last_safe_log >= SAFE_LOG_EVERY_S:
        _last_safe_log = now
        log.warning("realtime: a subscriber's row lookup failed (%s): this batch, and any like it, is checked again "
                 "one subscriber at a time (logged at most every %.0f s)", exc, SAFE_LOG_EVERY_S)  # fmt: skip
