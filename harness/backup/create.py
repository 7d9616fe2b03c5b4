"""`harness backup create`: one consistent, encrypted, checksummed backup of a database, in two regions' buckets.

    source ──BEGIN REPEATABLE READ; pg_export_snapshot()──┬── inventory: counts + sample digests (that snapshot)
                                                          └── pg_dump -Fc --snapshot=<it>   (the same rows)
           pg_dumpall --roles-only ─► roles.sql
    tar(manifest.json, roles.sql, database.pgdump) ─► gpg (recipients) ─► sha256
    ─► s3://bucket/prefix/label/<stamp>.dump.gpg  (x-amz-meta-sha256; multipart above the threshold)
    ─► s3://bucket/prefix/label/<stamp>.manifest.json
    ─► the same two objects copied to --replica-bucket in --replica-region

The inventory and the dump share one snapshot, so the counts recorded are exactly those of the dump however busy
the source is. Plaintext exists only in a private temporary folder (mode 0700) removed at the end.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from harness.backup import bundle, inventory, pgtools
from harness.backup.crypto import Keyring
from harness.backup.manifest import Manifest
from harness.backup.source import Dsn, connect
from harness.backup.store import MIB, SHA256_METADATA, BackupStore, Progress, sha256_of, stamp_of, transfer_config
from harness.errors import ConfigError


@dataclass(frozen=True)
class CreateResult:
    key: str
    manifest: Manifest
    """The outer manifest (with the encrypted object's size and SHA-256)."""
    urls: tuple[str, ...]
    """Every copy of the encrypted object (primary bucket first)."""
    dump_s: float
    encrypt_s: float
    upload_s: float


@dataclass(frozen=True)
class _Snapshot:
    created_at: datetime
    server_version: str
    tables: list[inventory.TableCount]


async def _dump_in_snapshot(source: Dsn, dump_path: Path, schemas: Sequence[str], sample_rows: int) -> _Snapshot:
    conn = await connect(source)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("select pg_export_snapshot()")
            created_at = await conn.fetchval("select now()")
            version = await conn.fetchval("show server_version")
            tables = await inventory.take(conn, schemas, sample_rows)
            # pg_dump imports the snapshot while this transaction holds it open.
            await asyncio.to_thread(pgtools.dump, source, snapshot, dump_path)
    except asyncpg.PostgresError as exc:
        raise ConfigError(
            f"cannot take the inventory of {source.display()}: {exc}; back up as a user that can read every table "
            "(a superuser, or one with bypassrls)"
        ) from None
    finally:
        await conn.close()
    return _Snapshot(created_at, str(version).split()[0], tables)


def create_backup(
    source: Dsn,
    store: BackupStore,
    keyring: Keyring,
    recipients: Sequence[str],
    *,
    label: str,
    replica: BackupStore | None = None,
    schemas: Sequence[str] = inventory.DEFAULT_SCHEMAS,
    sample_rows: int = inventory.DEFAULT_SAMPLE_ROWS,
    multipart_threshold_mb: float = 64.0,
    work_dir: Path | None = None,
    say: Progress = lambda _line: None,
) -> CreateResult:
    # Keys and buckets first: a missing one fails in a second, not after an hour of dumping.
    fingerprints = keyring.recipients(recipients)
    for bucket in (store, replica):
        if bucket is not None:
            bucket.check_bucket()
    config = transfer_config(multipart_threshold_mb)
    with tempfile.TemporaryDirectory(prefix="harness-backup-", dir=work_dir) as tmp:
        folder = Path(tmp)
        dump_path = folder / bundle.DUMP
        say(f"dumping {source.display()} (pg_dump, custom format)")
        started = time.monotonic()
        roles = pgtools.dump_roles(source)
        snap = asyncio.run(_dump_in_snapshot(source, dump_path, schemas, sample_rows))
        dump_s = time.monotonic() - started
        manifest = Manifest(
            label=label, created_at=snap.created_at.astimezone(UTC).isoformat(), source=source.display(),
            server_version=snap.server_version, pg_dump_version=pgtools.version("pg_dump"),
            dump_bytes=dump_path.stat().st_size, tables=tuple(snap.tables), schemas=tuple(schemas),
            sample_limit=sample_rows, recipients=tuple(fingerprints),
        )  # fmt: skip
        say(
            f"dump: {manifest.dump_bytes / MIB:.1f} MiB, {len(snap.tables)} tables, {manifest.total_rows} rows "
            f"in {dump_s:.1f} s"
        )
        stamp = stamp_of(snap.created_at)
        key = store.dump_key(label, stamp)
        if store.exists(key):
            raise ConfigError(f"{store.url(key)} exists already (a backup of {label} this second); try again")

        started = time.monotonic()
        tar_path = folder / "bundle.tar"
        bundle.pack(folder, manifest, roles, dump_path, tar_path)
        dump_path.unlink()
        encrypted = folder / "bundle.tar.gpg"
        keyring.encrypt(tar_path, encrypted, fingerprints)
        tar_path.unlink()
        sha256 = sha256_of(encrypted)
        encrypt_s = time.monotonic() - started
        outer = manifest.outer(key, encrypted.stat().st_size, sha256)

        started = time.monotonic()
        metadata = {SHA256_METADATA: sha256, "label": label, "created": outer.created_at, "format": outer.format}
        store.upload(encrypted, key, metadata, config, say)
        manifest_key = store.manifest_key(label, stamp)
        store.put_text(manifest_key, outer.to_json())
        urls = [store.url(key)]
        if replica is not None:
            say(f"copying to {replica.url(key)} ({replica.region or 'default region'})")
            replica.copy_from(store, key, config)
            replica.copy_from(store, manifest_key, config)
            urls.append(replica.url(key))
        upload_s = time.monotonic() - started
    return CreateResult(key, outer, tuple(urls), dump_s, encrypt_s, upload_s)
