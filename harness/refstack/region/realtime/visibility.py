"""Which subscribers may see a changed row, asked of the database as each of them (contract_realtime.sql).

One statement per change, whatever the number of subscribers: `realtime.visible_to(table, key columns, key values,
claims[])` becomes each subscriber in turn (role + request.jwt.claims) and looks the row up by its key, so grants and
row-level security policies are Postgres's own, exactly as a REST read by that subscriber would see them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from harness.refstack.region.realtime.changes import Change

_VISIBLE_TO = "select realtime.visible_to($1::oid, $2::text[], $3::text[], $4::jsonb[])"


def claims_json(raw: dict[str, Any]) -> str:
    return json.dumps(raw, separators=(",", ":"))


async def visible(pool: asyncpg.Pool, change: Change, claims: Sequence[str]) -> set[int]:
    """Indexes (0-based) of the claims (JSON texts) that can SELECT the changed row now."""
    if not claims or not change.relation.key:
        return set()
    found = await pool.fetchval(
        _VISIBLE_TO, change.relation.oid, list(change.relation.key_names), list(change.key_text), list(claims)
    )
    return {i - 1 for i in found or ()}
