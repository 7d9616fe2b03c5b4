"""Realtime's visibility check (`realtime.visible_rows`, contract_realtime.sql) on its own: the cost per subscriber
check of the batches the change feed sends under `harness load` (one new message, two members each).

    seed (users, two-member conversations, messages) ──► Singapore's PostgreSQL of a reference stack
    visible_rows(batch of 34 checks) × N, as supabase_admin, one connection ─► µs per check

`--other GIT_REV` also loads that revision's definition (renamed `realtime.visible_rows_other`) into the same
database and times both in alternating rounds, side by side:

    python bench/bench_visible_rows.py                       # about 30 s
    python bench/bench_visible_rows.py --other 9c9330a       # before the prepared lookups

Bounded: --calls per round (default 200), --rounds (default 3); the stack is stopped on every exit path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts  # noqa: E402

CONTRACT = "harness/refstack/postgres/contract_realtime.sql"
USERS, CONVERSATIONS, MESSAGES_EACH, CHECKS_PER_CALL = 400, 300, 100, 34
Messages = list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]
"""(message, sender, other member) of every seeded message."""


async def seed(conn: asyncpg.Connection) -> Messages:
    """(message, sender, other member) rows in two-member conversations."""
    users = [uuid.uuid4() for _ in range(USERS)]
    await conn.executemany(
        "insert into auth.users (id, email) values ($1, $2)", [(u, f"{u}@bench.test") for u in users]
    )
    out = []
    for _ in range(CONVERSATIONS):
        conversation, (a, b) = uuid.uuid4(), random.sample(users, 2)
        await conn.execute("insert into public.conversations (id, created_by) values ($1, $2)", conversation, a)
        await conn.executemany(
            "insert into public.conversation_members (conversation_id, user_id) values ($1, $2)",
            [(conversation, a), (conversation, b)],
        )
        ids = [uuid.uuid4() for _ in range(MESSAGES_EACH)]
        await conn.executemany(
            "insert into public.messages (id, conversation_id, sender_id, client_msg_id, content)"
            " values ($1, $2, $3, $4, 'hello')", [(m, conversation, a, str(m)) for m in ids],
        )  # fmt: skip
        out += [(m, a, b) for m in ids]
    return out


def batch(oid: int, messages: Messages, by_members: dict[tuple[uuid.UUID, ...], list[uuid.UUID]]) -> str:
    """Both members of 17 conversations; for every fourth, five of its messages (several rows for one subscriber, as
    a busy conversation gives under load)."""
    checks = []
    for i, (message, *members) in enumerate(random.sample(messages, CHECKS_PER_CALL // 2)):
        rows = [[str(m)] for m in by_members[tuple(members)][:5]] if i % 4 == 0 else [[str(message)]]
        for user in members:
            claims = {"sub": str(user), "role": "authenticated", "email": f"{user}@bench.test", "aud": "authenticated"}
            checks.append({"entity": oid, "key": ["id"], "claims": claims, "rows": rows})
    return json.dumps(checks)


def all_visible(answer: str, sent: str) -> bool:
    return json.loads(answer) == [list(range(len(check["rows"]))) for check in json.loads(sent)]


async def measure(port: int, other_rev: str | None, calls: int, rounds: int) -> dict[str, list[float]]:
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="supabase_admin", database="postgres")
    try:
        functions = {"current": "realtime.visible_rows"}
        if other_rev:
            text = subprocess.run(["git", "-C", str(REPO), "show", f"{other_rev}:{CONTRACT}"], check=True,
                                  capture_output=True, text=True).stdout  # fmt: skip
            text = text.replace("realtime.visible_rows(", "realtime.visible_rows_other(")
            await conn.execute(text.replace("create schema if not exists realtime;", ""))
            functions[other_rev] = "realtime.visible_rows_other"
        messages = await seed(conn)
        oid = await conn.fetchval("select 'public.messages'::regclass::oid")
        by_members: dict[tuple[uuid.UUID, ...], list[uuid.UUID]] = {}
        for message, *members in messages:
            by_members.setdefault(tuple(members), []).append(message)
        batches = [batch(oid, messages, by_members) for _ in range(calls)]
        for function in functions.values():  # every lookup visible (both members), and warm
            assert all_visible(await conn.fetchval(f"select {function}($1::jsonb)::text", batches[0]), batches[0])
        per_check: dict[str, list[float]] = {name: [] for name in functions}
        for r in range(rounds):
            for name, function in sorted(functions.items(), reverse=bool(r % 2)):  # order alternates
                started = time.perf_counter()
                for b in batches:
                    await conn.fetchval(f"select {function}($1::jsonb)::text", b)
                per_check[name].append((time.perf_counter() - started) / (calls * CHECKS_PER_CALL) * 1e6)
        return per_check
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other", metavar="GIT_REV", help="also time this revision's visible_rows, side by side")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with ReferenceStack(StackConfig(ports=StackPorts.any())) as stack:
        port = stack.postgres_port("primary")
        per_check = asyncio.run(measure(port, args.other, min(args.calls, 2000), min(args.rounds, 10)))
    print(f"| definition | µs per check, each round ({CHECKS_PER_CALL} checks a call) | median |")
    print("|---|---|---|")
    for name, values in per_check.items():
        print(f"| {name} | {' / '.join(f'{v:.1f}' for v in values)} | {statistics.median(values):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
