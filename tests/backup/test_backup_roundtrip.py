"""create → verify → restore on real PostgreSQL, GPG and moto's S3; and the verifies that must fail: a corrupted
object, a wrong key, a bundle that decrypts but does not restore."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from harness.backup import bundle
from harness.backup.crypto import Keyring
from harness.cli import main
from harness.refstack.postgres.cluster import Cluster
from tests.backup.conftest import (
    BUCKET,
    MESSAGES,
    PASSPHRASE,
    REPLICA_BUCKET,
    Buckets,
    Key,
    Keys,
    run_sql,
    schema_cluster,
)
from tests.conftest import SlackReceiver


def harness(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def create(
    capsys: pytest.CaptureFixture[str], buckets: Buckets, keys: Keys, source: Cluster, *extra: str,
    recipient: Key | None = None,
) -> str:  # fmt: skip
    to = recipient or keys.a
    code, out = harness(
        capsys, "backup", "create", "--dsn", source.dsn(), "--label", "sg", "--recipient", to.email,
        "--gnupg-home", str(to.home), *buckets.store_args(), *buckets.aws_args(), *extra,
    )  # fmt: skip
    assert code == 0, out
    [key] = [k for k in buckets.objects() if k.endswith(".dump.gpg")]
    return key


def verify(capsys: pytest.CaptureFixture[str], buckets: Buckets, home: Path, *extra: str) -> tuple[int, str]:
    return harness(
        capsys, "backup", "verify", "--gnupg-home", str(home), *buckets.store_args(), *buckets.aws_args(), *extra
    )


def counts(dsn: str) -> dict[str, int]:
    tables = ("auth.users", "public.profiles", "public.conversations", "public.conversation_members", "public.messages")
    return {t: int(run_sql(dsn, f"select count(*) from {t}")[0][0]) for t in tables}


def test_create_verify_restore_round_trip(
    capsys: pytest.CaptureFixture[str], buckets: Buckets, keys: Keys, source: Cluster, tmp_path: Path,
    bare_cluster: Cluster,
) -> None:  # fmt: skip
    key = create(capsys, buckets, keys, source, "--multipart-threshold-mb", "0.01")
    manifest_key = key.replace(".dump.gpg", ".manifest.json")
    assert buckets.objects() == [key, manifest_key] == buckets.objects(REPLICA_BUCKET)
    assert key.startswith("backups/sg/") and key.endswith("Z.dump.gpg")

    head = buckets.s3.head_object(Bucket=BUCKET, Key=key)
    body = buckets.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert head["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert "-" in head["ETag"].strip('"')  # a multipart upload's ETag ends in -<parts>
    assert b"PGDMP" not in body and b"message 1" not in body  # encrypted, not a plain dump
    replica_head = buckets.replica_s3.head_object(Bucket=REPLICA_BUCKET, Key=key)
    assert replica_head["Metadata"]["sha256"] == head["Metadata"]["sha256"]

    manifest = json.loads(buckets.s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    assert manifest["sha256"] == head["Metadata"]["sha256"] and manifest["encrypted_bytes"] == len(body)
    recorded = {f"{t['schema']}.{t['table']}": t["rows"] for t in manifest["tables"]}
    assert {name: recorded[name] for name in counts(source.dsn())} == counts(source.dsn())
    assert recorded["public.messages"] == MESSAGES
    assert manifest["recipients"] == [keys.a.fingerprint]

    report = tmp_path / "verify.json"
    code, out = verify(capsys, buckets, keys.a.home, "--source-dsn", source.dsn(), "--json", str(report))
    assert code == 0, out
    assert "verify: ok" in out
    result = json.loads(report.read_text())
    assert result["ok"] is True
    restored = {t["name"]: t["actual_rows"] for t in result["tables"]}
    assert restored["public.messages"] == MESSAGES and all(t["sample"] == "equal" for t in result["tables"]
                                                           if t["name"] == "public.messages")  # fmt: skip
    assert sum(s["sampled"] for s in result["source_samples"]) > 0
    assert {c["name"] for c in result["checks"]} >= {"checksum", "decrypt", "restore", "tables", "source", "replica"}

    # Into a bare server: the backup brings Supabase's roles along (policies and grants name them).
    code, out = harness(
        capsys, "backup", "restore", "--target-dsn", bare_cluster.dsn(), "--yes", "--gnupg-home", str(keys.a.home),
        *buckets.store_args(), *buckets.aws_args(),
    )  # fmt: skip
    assert code == 0, out
    assert counts(bare_cluster.dsn()) == counts(source.dsn())
    assert run_sql(bare_cluster.dsn(), "select count(*) from pg_policies where tablename = 'messages'")[0][0] >= 4
    assert run_sql(bare_cluster.dsn(), "select rolbypassrls from pg_roles where rolname = 'service_role'")[0][0]

    # Into a region that has the schema and other rows: the backup's tables replace its own.
    region = schema_cluster(tmp_path / "region", messages=3)
    try:
        code, out = harness(
            capsys, "backup", "restore", "--from-replica", "--label", "sg", "--target-dsn", region.dsn(), "--yes",
            "--gnupg-home", str(keys.a.home), *buckets.store_args(), *buckets.aws_args(),
        )  # fmt: skip
        assert code == 0, out
        assert counts(region.dsn()) == counts(source.dsn())
    finally:
        region.stop()


def test_corrupted_object_fails_verify(
    capsys: pytest.CaptureFixture[str], buckets: Buckets, keys: Keys, source: Cluster, slack: SlackReceiver
) -> None:
    key = create(capsys, buckets, keys, source)
    original = buckets.s3.get_object(Bucket=BUCKET, Key=key)
    body = bytearray(original["Body"].read())
    body[len(body) // 2] ^= 0x01  # one flipped bit, metadata untouched
    buckets.s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(body), Metadata=original["Metadata"])

    code, out = verify(capsys, buckets, keys.a.home, "--key", key, "--slack-webhook", slack.url)
    assert code == 1, out
    assert "corrupted" in out and "verify: FAILED" in out
    # The failed verify is announced, with where and what, and never the webhook's secret path.
    assert len(slack.bodies) == 1 and "backup verify" in slack.bodies[0]["text"], slack.bodies
    assert key in slack.bodies[0]["text"] and "xyzWebhookSecret42" not in json.dumps(slack.bodies)
    assert "decrypt" not in out.split("checksum", 1)[1]  # never decrypted

    # The copy in the other region is intact and verifies.
    code, out = verify(capsys, buckets, keys.a.home, "--key", key, "--from-replica")
    assert code == 0, out


def test_wrong_key_fails_verify_and_restore(
    capsys: pytest.CaptureFixture[str], buckets: Buckets, keys: Keys, source: Cluster, bare_cluster: Cluster
) -> None:
    create(capsys, buckets, keys, source)
    code, out = verify(capsys, buckets, keys.b.home)
    assert code == 1, out
    assert "decrypt   FAILED" in out and "holds none of the secret keys" in out
    assert "restore" not in out

    code, out = harness(
        capsys, "backup", "restore", "--target-dsn", bare_cluster.dsn(), "--yes", "--gnupg-home", str(keys.b.home),
        *buckets.store_args(), *buckets.aws_args(),
    )  # fmt: skip
    assert code == 1 and "restore: FAILED" in out
    assert run_sql(bare_cluster.dsn(), "select to_regclass('public.messages') is null")[0][0]  # target untouched


def test_a_protected_key_needs_its_passphrase_which_is_never_printed(
    capsys: pytest.CaptureFixture[str], buckets: Buckets, keys: Keys, source: Cluster, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    create(capsys, buckets, keys, source, recipient=keys.protected)
    monkeypatch.delenv("HARNESS_BACKUP_PASSPHRASE", raising=False)
    code, out = verify(capsys, buckets, keys.protected.home)
    assert code == 1 and "the secret key is protected; set HARNESS_BACKUP_PASSPHRASE" in out

    monkeypatch.setenv("HARNESS_BACKUP_PASSPHRASE", "not the passphrase")
    code, out = verify(capsys, buckets, keys.protected.home)
    assert code == 1 and "wrong passphrase" in out and "not the passphrase" not in out

    monkeypatch.setenv("HARNESS_BACKUP_PASSPHRASE", PASSPHRASE)
    report = tmp_path / "verify.json"
    code, out = verify(capsys, buckets, keys.protected.home, "--json", str(report))
    assert code == 0, out
    assert PASSPHRASE not in out and PASSPHRASE not in report.read_text()


def test_bundle_that_does_not_restore_fails_verify_whatever_s3_says(
    capsys: pytest.CaptureFixture[str], buckets: Buckets, keys: Keys, source: Cluster, tmp_path: Path
) -> None:
    key = create(capsys, buckets, keys, source)
    keyring = Keyring(keys.a.home)
    (tmp_path / "enc").write_bytes(buckets.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    keyring.decrypt(tmp_path / "enc", tmp_path / "tar", None)
    (tmp_path / "open").mkdir()
    opened = bundle.unpack(tmp_path / "tar", tmp_path / "open")
    truncated = tmp_path / "truncated.pgdump"
    truncated.write_bytes(opened.dump.read_bytes()[: opened.dump.stat().st_size // 2])
    bundle.pack(tmp_path / "open", opened.manifest, opened.roles.read_text(), truncated, tmp_path / "bad.tar")
    keyring.encrypt(tmp_path / "bad.tar", tmp_path / "bad.gpg", [keys.a.fingerprint])
    bad = (tmp_path / "bad.gpg").read_bytes()
    metadata: dict[str, Any] = {"sha256": hashlib.sha256(bad).hexdigest()}  # S3's checksum is right
    buckets.s3.put_object(Bucket=BUCKET, Key=key, Body=bad, Metadata=metadata)
    buckets.replica_s3.put_object(Bucket=REPLICA_BUCKET, Key=key, Body=bad, Metadata=metadata)

    code, out = verify(capsys, buckets, keys.a.home)
    assert code == 1, out
    assert "checksum  ok" in out and "decrypt   ok" in out and "restore   FAILED" in out
    assert "verify: FAILED" in out
