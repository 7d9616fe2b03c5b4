"""Backups against real pieces: throwaway GPG keys in temporary GnuPG homes, buckets in moto's real HTTP server,
and PostgreSQL clusters with the reference stack's schema (Supabase's contract and the app's migrations).

    keys     key A (the backups' recipient) and key B (another team's) in two homes; B's home lacks A's secret key;
             a passphrase-protected key in a third
    buckets  "harness-backups" in ap-southeast-1 and "harness-backups-replica" in ap-northeast-1 on moto
    source   a cluster with the app's schema and a few users, conversations and messages
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import gnupg
import pytest

from harness.refstack.postgres import migrations
from harness.refstack.postgres.cluster import Cluster

BUCKET = "harness-backups"
REPLICA_BUCKET = "harness-backups-replica"
PRIMARY_REGION = "ap-southeast-1"
REPLICA_REGION = "ap-northeast-1"
MESSAGES = 250


@dataclass(frozen=True)
class Key:
    home: Path
    email: str
    fingerprint: str


@dataclass(frozen=True)
class Keys:
    a: Key
    b: Key
    protected: Key
    """Its secret key needs PASSPHRASE."""


PASSPHRASE = "correct horse battery staple"


def _new_key(home: Path, email: str, passphrase: str | None = None) -> Key:
    home.mkdir(mode=0o700)
    # A fixed, small key-derivation count: gpg-agent otherwise calibrates it to ~100 ms and a protected key's
    # generation takes seconds.
    (home / "gpg-agent.conf").write_text("s2k-count 65536\n")
    gpg = gnupg.GPG(gnupghome=str(home))
    protection: dict[str, Any] = {"passphrase": passphrase} if passphrase else {"no_protection": True}
    spec = gpg.gen_key_input(
        key_type="EDDSA", key_curve="ed25519", subkey_type="ECDH", subkey_curve="cv25519", name_email=email,
        expire_date=0, **protection,
    )  # fmt: skip
    made = gpg.gen_key(spec)
    assert made.fingerprint, made.stderr
    return Key(home, email, str(made.fingerprint))


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    root = tmp_path_factory.mktemp("gpg")
    made = Keys(
        _new_key(root / "a", "backups@harness.test"), _new_key(root / "b", "other@harness.test"),
        _new_key(root / "c", "protected@harness.test", PASSPHRASE),
    )  # fmt: skip
    yield made
    for key in (made.a, made.b, made.protected):  # gpg-agent outlives gpg; stop each home's own agent
        subprocess.run(["gpgconf", "--homedir", str(key.home), "--kill", "all"], check=False, capture_output=True)


@dataclass(frozen=True)
class Buckets:
    endpoint_url: str
    s3: Any
    replica_s3: Any

    def aws_args(self) -> list[str]:
        return ["--aws-endpoint-url", self.endpoint_url, "--aws-region", PRIMARY_REGION]

    def store_args(self) -> list[str]:
        return ["--bucket", BUCKET, "--replica-bucket", REPLICA_BUCKET, "--replica-region", REPLICA_REGION]

    def objects(self, bucket: str = BUCKET) -> list[str]:
        client = self.s3 if bucket == BUCKET else self.replica_s3
        return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.fixture
def buckets(moto_server: Any) -> Buckets:
    s3 = boto3.client("s3", region_name=PRIMARY_REGION, endpoint_url=moto_server.endpoint_url)
    replica = boto3.client("s3", region_name=REPLICA_REGION, endpoint_url=moto_server.endpoint_url)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": PRIMARY_REGION})
    replica.create_bucket(Bucket=REPLICA_BUCKET, CreateBucketConfiguration={"LocationConstraint": REPLICA_REGION})
    return Buckets(moto_server.endpoint_url, s3, replica)


def run_sql(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


async def _schema_and_data(dsn: str, messages: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrations.bootstrap(conn)
        await migrations.apply(conn, migrations.default_folder())
        users = [str(uuid.uuid4()) for _ in range(3)]
        for i, uid in enumerate(users):
            await conn.execute(
                "insert into auth.users (id, aud, role, email, raw_user_meta_data) "
                "values ($1, 'authenticated', 'authenticated', $2, '{\"display_name\": \"User\"}')",
                uid,
                f"user{i}@harness.test",
            )
        conv = await conn.fetchval(
            "insert into public.conversations (created_by, title) values ($1, 'g') returning id", users[0]
        )
        for uid in users:
            await conn.execute(
                "insert into public.conversation_members (conversation_id, user_id) values ($1, $2)", conv, uid
            )
        await conn.execute(
            "insert into public.messages (conversation_id, sender_id, client_msg_id, content, metadata) "
            "select $1, $2, 'm' || g, 'message ' || g || ' é 😀', jsonb_build_object('n', g, 'f', g / 3.0) "
            "from generate_series(1, $3::int) g",
            conv,
            users[0],
            messages,
        )
    finally:
        await conn.close()


def schema_cluster(path: Path, messages: int) -> Cluster:
    """A started cluster with the reference region's schema and `messages` messages (the caller stops it)."""
    cluster = Cluster(path)
    cluster.init()
    cluster.start()
    try:
        asyncio.run(_schema_and_data(cluster.dsn(), messages))
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = schema_cluster(tmp_path_factory.mktemp("source") / "pg", MESSAGES)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def bare_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A fresh initdb'ed cluster: no Supabase roles or schemas."""
    cluster = Cluster(tmp_path / "bare")
    cluster.init()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
