"""`harness backup` timed: create and verify of a region database holding 100,000 messages, against moto's S3.

    Cluster + Supabase's contract + the app's migrations (the reference region's schema)
      └── 1,000 users, 100 conversations (10 members each), 100,000 messages (generate_series, as supabase_admin)
    moto server (its own process, loopback)      buckets in ap-southeast-1 and ap-northeast-1
    GnuPG home in a temporary folder             one ed25519/cv25519 key, the recipient
    × --runs:  create_backup (dump ─► encrypt ─► upload ─► replica copy)
               verify_backup (download + sha256 ─► decrypt ─► scratch PostgreSQL ─► roles ─► pg_restore ─► compare)

Prints a markdown table (median of the runs, with min and max). Bounded: --runs (default 3); every server it starts
is stopped on every exit path.

    python bench/bench_backup.py                  # about 30 s
    python bench/bench_backup.py --messages 1000000 --runs 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import boto3
import gnupg
import httpx

from harness.backup.create import create_backup
from harness.backup.crypto import Keyring
from harness.backup.source import Dsn
from harness.backup.store import MIB, BackupStore
from harness.backup.verify import verify_backup
from harness.dr.aws import AwsSettings
from harness.refstack.postgres import migrations
from harness.refstack.postgres.cluster import SUPERUSER, Cluster

BUCKET, REPLICA_BUCKET = "bench-backups", "bench-backups-replica"
PRIMARY_REGION, REPLICA_REGION = "ap-southeast-1", "ap-northeast-1"
USERS, CONVERSATIONS, MEMBERS = 1_000, 100, 10


async def fill(dsn: str, messages: int) -> None:
    """The region schema, then users, conversations, members and messages, all in SQL (seconds, not minutes)."""
    conn = await asyncpg.connect(dsn)
    try:
        await migrations.bootstrap(conn)
        await migrations.apply(conn, migrations.default_folder())
        await conn.execute(
            "insert into auth.users (id, aud, role, email, raw_user_meta_data) "
            "select gen_random_uuid(), 'authenticated', 'authenticated', 'bench' || g || '@example.com', "
            "jsonb_build_object('display_name', 'User ' || g) from generate_series(1, $1::int) g",
            USERS,
        )
        await conn.execute(
            "insert into public.conversations (title, is_group, created_by) "
            "select 'group ' || g, true, (select id from auth.users order by id offset (g - 1) limit 1) "
            "from generate_series(1, $1::int) g",
            CONVERSATIONS,
        )
        await conn.execute(
            "insert into public.conversation_members (conversation_id, user_id) "
            "select c.id, u.id from (select id, row_number() over (order by id) as n from public.conversations) c "
            "join (select id, row_number() over (order by id) as n from auth.users) u "
            "on u.n between (c.n - 1) * $1::int + 1 and c.n * $1::int",
            MEMBERS,
        )
        await conn.execute(
            "insert into public.messages (conversation_id, sender_id, client_msg_id, content, created_at) "
            "select m.conversation_id, m.user_id, 'bench-' || g, "
            "'message ' || g || ': ' || md5(g::text) || ' lorem ipsum dolor sit amet', "
            "now() - make_interval(secs => $1::int - g) "
            "from generate_series(1, $1::int) g "
            "join (select conversation_id, user_id, row_number() over () - 1 as n from public.conversation_members) m "
            "on m.n = g % $2::int",
            messages,
            CONVERSATIONS * MEMBERS,
        )
        await conn.execute("analyze")
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def moto_server(log: Path) -> Iterator[str]:
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/moto-api/", timeout=1.0)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"moto server did not start; see {log}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def keyring(folder: Path) -> Iterator[tuple[Keyring, str]]:
    home = folder / "gnupg"
    home.mkdir(mode=0o700)
    gpg = gnupg.GPG(gnupghome=str(home))
    made = gpg.gen_key(gpg.gen_key_input(key_type="EDDSA", key_curve="ed25519", subkey_type="ECDH",
                                         subkey_curve="cv25519", name_email="bench@example.com", expire_date=0,
                                         no_protection=True))  # fmt: skip
    try:
        yield Keyring(home), str(made.fingerprint)
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False, capture_output=True)


def _row(name: str, values: list[float], unit: str = "s") -> str:
    if unit == "MiB":
        return f"| {name} | {statistics.median(values):.2f} MiB | | |"
    return f"| {name} | {statistics.median(values):.2f} s | {min(values):.2f} s | {max(values):.2f} s |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--multipart-threshold-mb", type=float, default=64.0)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    folder.chmod(0o711)  # the server may run as harness-pg (as root): it enters, it does not list
    cluster = Cluster(folder / "source")
    samples: dict[str, list[float]] = {}
    try:
        cluster.init()
        cluster.start()
        started = time.monotonic()
        asyncio.run(fill(cluster.dsn(), args.messages))
        print(f"database filled in {time.monotonic() - started:.1f} s", file=sys.stderr)
        with moto_server(folder / "moto.log") as url, keyring(folder) as (ring, fingerprint):
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
            settings = AwsSettings(endpoint_url=url, region=PRIMARY_REGION)
            boto3.client("s3", region_name=PRIMARY_REGION, endpoint_url=url).create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": PRIMARY_REGION})  # fmt: skip
            boto3.client("s3", region_name=REPLICA_REGION, endpoint_url=url).create_bucket(
                Bucket=REPLICA_BUCKET, CreateBucketConfiguration={"LocationConstraint": REPLICA_REGION})  # fmt: skip
            store = BackupStore(settings, BUCKET)
            replica = BackupStore(settings, REPLICA_BUCKET, region=REPLICA_REGION)
            source = Dsn(cluster.host, cluster.port, SUPERUSER, "postgres")
            for run in range(args.runs):
                t0 = time.monotonic()
                made = create_backup(source, store, ring, [fingerprint], label=f"bench{run}", replica=replica,
                                     multipart_threshold_mb=args.multipart_threshold_mb, work_dir=folder)  # fmt: skip
                create_s = time.monotonic() - t0
                t0 = time.monotonic()
                checked = verify_backup(store, made.key, ring, None, replica=replica, work_dir=folder)
                verify_s = time.monotonic() - t0
                if not checked.ok:
                    raise SystemExit(f"verify failed: {checked.summary()}")
                by_name = {c.name: c.seconds for c in checked.checks}
                run_samples = {
                    "dump_mib": made.manifest.dump_bytes / MIB,
                    "encrypted_mib": (made.manifest.encrypted_bytes or 0) / MIB,
                    "create": create_s, "dump": made.dump_s, "encrypt": made.encrypt_s, "upload": made.upload_s,
                    "verify": verify_s, "download": by_name["checksum"], "decrypt": by_name["decrypt"],
                    "restore": by_name["roles"] + by_name["restore"], "compare": by_name["tables"],
                }  # fmt: skip
                for name, value in run_samples.items():
                    samples.setdefault(name, []).append(value)
                print(f"run {run + 1}: create {create_s:.2f} s, verify {verify_s:.2f} s", file=sys.stderr)
                rows = made.manifest.total_rows
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)

    print(f"\n### harness backup: {args.messages:,} messages ({rows:,} rows in all), moto S3, {args.runs} runs\n")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}\n")
    print("| step | median | min | max |")
    print("|---|---|---|---|")
    print(_row("pg_dump size (custom format)", samples["dump_mib"], "MiB"))
    print(_row("encrypted object size", samples["encrypted_mib"], "MiB"))
    print(_row("**create** (total)", samples["create"]))
    print(_row("↳ dump + inventory (one snapshot)", samples["dump"]))
    print(_row("↳ tar + gpg encrypt + sha256", samples["encrypt"]))
    print(_row("↳ upload + replica copy", samples["upload"]))
    print(_row("**verify** (total)", samples["verify"]))
    print(_row("↳ download + sha256", samples["download"]))
    print(_row("↳ gpg decrypt", samples["decrypt"]))
    print(_row("↳ roles + pg_restore (scratch cluster)", samples["restore"]))
    print(_row("↳ count + sample digests, compare", samples["compare"]))


if __name__ == "__main__":
    main()
