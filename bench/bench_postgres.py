"""The reference stack's PostgreSQL, measured on its own: the database's limit for the region's hot statements
(pgbench), stack start-up time, and the Japan replica's lag at a steady 1,000 inserts/s.

    pgbench ──(authenticator, role + claims set as PostgREST does)──► Singapore's cluster   the limit for
                                                                                           bench_region.py
    ReferenceStack.start() × N                                                              start-up time
    asyncpg paced inserts ──► primary ══streaming══► replica; pg_stat_replication sampled   replication lag

Bounded: --seconds per pgbench phase (default 10) and per lag run (default 10), plus start-up runs; every server is
stopped on every exit path.

    python bench/bench_postgres.py                # about 60 s
    python bench/bench_postgres.py --seconds 5 --startups 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from harness.refstack.postgres import migrations
from harness.refstack.postgres.cluster import Cluster
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts

SEED_MESSAGES = 200

_CALLER = (
    "SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', :claims, true), "
    "set_config('request.jwt.claim.sub', :uid, true);"
)
READ_SCRIPT = f"""BEGIN READ ONLY;
{_CALLER}
SELECT coalesce(json_agg(t), '[]')::text FROM (SELECT * FROM public.messages WHERE conversation_id = :conv::uuid
  ORDER BY created_at DESC LIMIT 50) t;
COMMIT;
"""
INSERT_SCRIPT = f"""BEGIN;
{_CALLER}
INSERT INTO public.messages (conversation_id, sender_id, client_msg_id, content)
  VALUES (:conv::uuid, :uid::uuid, gen_random_uuid()::text, 'pgbench');
COMMIT;
"""


async def prepare(cluster: Cluster) -> dict[str, str]:
    """Supabase's contract, the app's migration, one user in one conversation with SEED_MESSAGES messages."""
    conn = await asyncpg.connect(cluster.dsn())
    try:
        await migrations.bootstrap(conn)
        await migrations.apply(conn, migrations.default_folder())
        uid = str(uuid.uuid4())
        await conn.execute(
            "insert into auth.users (id, aud, role, email) values ($1, 'authenticated', 'authenticated', $2)",
            uid,
            f"bench-{uid[:8]}@example.com",
        )
        conv = str(await conn.fetchval("insert into public.conversations (created_by) values ($1) returning id", uid))
        await conn.execute(
            "insert into public.conversation_members (conversation_id, user_id) values ($1, $2)", conv, uid
        )
        await conn.executemany(
            "insert into public.messages (conversation_id, sender_id, client_msg_id, content) values ($1, $2, $3, $4)",
            [(conv, uid, f"seed-{i}", f"message {i}") for i in range(SEED_MESSAGES)],
        )
    finally:
        await conn.close()
    claims = json.dumps({"sub": uid, "role": "authenticated", "aud": "authenticated"})
    return {"uid": uid, "conv": conv, "claims": claims}


def pgbench(cluster: Cluster, script: str, variables: dict[str, str], seconds: int, clients: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        handle.write(script)
    argv = [str(cluster.bin / "pgbench"), "-n", "-M", "prepared", "-h", cluster.host, "-p", str(cluster.port),
            "-U", "authenticator", "-d", "postgres", "-c", str(clients), "-j", "2", "-T", str(seconds),
            "-f", handle.name]  # fmt: skip
    for name, value in variables.items():
        argv += ["-D", f"{name}={value}"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    Path(handle.name).unlink()
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", result.stdout)
    if result.returncode != 0 or match is None:
        raise SystemExit(f"pgbench failed ({result.returncode}): {result.stderr.strip() or result.stdout[-500:]}")
    return float(match.group(1))


async def paced_inserts(primary: Cluster, variables: dict[str, str], rate: int, seconds: int) -> list[dict[str, float]]:
    """Insert at `rate` rows/s for `seconds` while sampling the replica's lag twice a second."""
    pool = await asyncpg.create_pool(primary.dsn(), min_size=8, max_size=8)
    samples: list[dict[str, float]] = []
    stop = time.monotonic() + seconds

    async def sample() -> None:
        while time.monotonic() < stop:
            row = await pool.fetchrow(
                "select pg_wal_lsn_diff(sent_lsn, replay_lsn) as bytes, extract(epoch from replay_lag) as seconds "
                "from pg_stat_replication limit 1"
            )
            if row is not None:
                samples.append({"bytes": float(row["bytes"] or 0), "seconds": float(row["seconds"] or 0)})
            await asyncio.sleep(0.5)

    async def insert(i: int) -> None:
        await pool.execute(
            "insert into public.messages (conversation_id, sender_id, client_msg_id, content) values ($1, $2, $3, 'x')",
            variables["conv"],
            variables["uid"],
            f"lag-{i}",
        )

    sampler = asyncio.create_task(sample())
    start = time.monotonic()
    pending: set[asyncio.Task[None]] = set()
    for i in range(rate * seconds):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        task = asyncio.create_task(insert(i))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    achieved = rate * seconds / (time.monotonic() - start)
    await sampler
    await pool.close()
    print(f"  inserted {rate * seconds} rows at {achieved:,.0f}/s")
    return samples


def startup_times(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        began = time.monotonic()
        with ReferenceStack(StackConfig(ports=StackPorts.any())):
            times.append(time.monotonic() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each pgbench phase and of the lag run")
    parser.add_argument("--clients", type=int, default=32, help="pgbench connections")
    parser.add_argument("--rate", type=int, default=1000, help="inserts/s during the lag run")
    parser.add_argument("--startups", type=int, default=3, help="reference stack start-ups to time")
    args = parser.parse_args()

    times = startup_times(args.startups)
    print(f"stack start-up (edge, Singapore, Japan, LiveKit): {', '.join(f'{t:.2f}' for t in times)} s")

    with tempfile.TemporaryDirectory(prefix="bench-postgres-") as scratch:
        primary = Cluster(Path(scratch) / "primary")
        replica = Cluster(Path(scratch) / "replica")
        try:
            primary.init()
            primary.start()
            variables = asyncio.run(prepare(primary))
            reads = pgbench(primary, READ_SCRIPT, variables, args.seconds, args.clients)
            inserts = pgbench(primary, INSERT_SCRIPT, variables, args.seconds, args.clients)
            print(f"pgbench, {args.clients} clients, as `authenticated` with RLS: {reads:,.0f} history reads/s, "
                  f"{inserts:,.0f} inserts/s")  # fmt: skip
            replica.base_backup(primary.host, primary.port, "replica_bench")
            replica.start()
            samples = asyncio.run(paced_inserts(primary, variables, args.rate, args.seconds))
            lag_bytes = [s["bytes"] for s in samples]
            lag_ms = [s["seconds"] * 1000 for s in samples]
            print(f"replication lag at {args.rate}/s: bytes median {statistics.median(lag_bytes):,.0f}, "
                  f"max {max(lag_bytes):,.0f}; replay lag median {statistics.median(lag_ms):.1f} ms, "
                  f"max {max(lag_ms):.1f} ms ({len(samples)} samples)")  # fmt: skip
        finally:
            replica.stop()
            primary.stop()


if __name__ == "__main__":
    main()
