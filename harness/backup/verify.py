"""`harness backup verify`: prove a backup restores, not just that S3 holds bytes.

    fetch: checksum ─► decrypt ─► bundle                        (fetch.py; any failure ends the verify)
    scratch PostgreSQL (temporary folder, removed after) ─► roles ─► pg_restore          (load.py)
    inventory of the copy vs the manifest inside the bundle: rows and sample digest per table   "tables"
    --source-dsn: the copy's sample rows looked up in the live source by primary key              "source"
    --replica-bucket: the replica's object carries the same sha256                               "replica"

`VerifyResult.ok` is True only when every check passed and every table matched: a backup that cannot be restored
is a failed verify whatever S3 says. The result is a plain dataclass (`to_dict()` for JSON) so a scheduler or an
alert hook can act on it; `summary()` is its one-line description.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from harness.backup import inventory, load
from harness.backup.bundle import Unpacked
from harness.backup.checks import Check
from harness.backup.crypto import Keyring
from harness.backup.fetch import fetch
from harness.backup.manifest import Manifest
from harness.backup.source import Dsn, connect
from harness.backup.store import SHA256_METADATA, BackupStore, Progress
from harness.errors import HarnessError
from harness.model.target_config import Secret
from harness.refstack.postgres.cluster import SUPERUSER, Cluster


@dataclass
class VerifyResult:
    url: str
    checks: list[Check] = field(default_factory=list)
    tables: list[inventory.TableComparison] = field(default_factory=list)
    source_samples: list[inventory.SourceSample] = field(default_factory=list)
    manifest: Manifest | None = None
    encrypted_bytes: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            bool(self.checks)
            and all(c.ok for c in self.checks)
            and bool(self.tables)
            and all(t.ok for t in self.tables)
            and all(s.differing == 0 for s in self.source_samples)
        )

    @property
    def failures(self) -> list[str]:
        out = [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]
        out += [f"{t.name}: rows {t.expected_rows} → {t.actual_rows}, sample {t.sample}" for t in self.tables
                if not t.ok]  # fmt: skip
        out += [f"{s.name}: {s.differing}/{s.sampled} sampled rows differ at the source" for s in self.source_samples
                if s.differing]  # fmt: skip
        return out

    def summary(self) -> str:
        if self.ok:
            rows = sum(t.actual_rows or 0 for t in self.tables)
            return f"backup {self.url} verified: restored {len(self.tables)} tables, {rows} rows, all equal"
        return f"backup {self.url} FAILED verify: " + "; ".join(self.failures[:3])

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["summary"] = self.summary()
        return data


def verify_backup(
    store: BackupStore,
    key: str,
    keyring: Keyring,
    passphrase: Secret | None,
    *,
    source: Dsn | None = None,
    replica: BackupStore | None = None,
    work_dir: Path | None = None,
    jobs: int = 2,
    say: Progress = lambda _line: None,
) -> VerifyResult:
    started = time.monotonic()
    # Two folders: the plaintext stays in a private one (0700, ours); the scratch server, which may run as another
    # account (harness-pg when we are root), gets its own that it can traverse, and never sees the plaintext.
    with (
        tempfile.TemporaryDirectory(prefix="harness-verify-", dir=work_dir) as tmp,
        tempfile.TemporaryDirectory(prefix="harness-verify-pg-", dir=work_dir) as pg_tmp,
    ):
        folder = Path(tmp)
        Path(pg_tmp).chmod(0o711)
        fetched = fetch(store, key, keyring, passphrase, folder, say)
        result = VerifyResult(fetched.url, list(fetched.checks), encrypted_bytes=fetched.encrypted_bytes)
        if fetched.opened is not None and fetched.ok:
            result.manifest = fetched.opened.manifest
            cluster = Cluster(Path(pg_tmp) / "data")
            _restore_and_compare(result, fetched.opened, folder, cluster, source, jobs, say)
        if replica is not None:
            result.checks.append(_replica_check(store, replica, key))
    result.seconds = time.monotonic() - started
    return result


def _restore_and_compare(
    result: VerifyResult, opened: Unpacked, folder: Path, cluster: Cluster, source: Dsn | None, jobs: int,
    say: Progress,
) -> None:  # fmt: skip
    manifest = opened.manifest
    say(f"restoring into a scratch PostgreSQL on port {cluster.port}")
    try:
        cluster.init()
        cluster.start()
        scratch = Dsn(cluster.host, cluster.port, SUPERUSER, "postgres")
        checks = load.load(scratch, opened, folder, replace_objects=False, jobs=jobs)
        result.checks += checks
        if not all(c.ok for c in checks):
            return
        started = time.monotonic()
        restored = asyncio.run(load.count(scratch, manifest.schemas, manifest.sample_limit))
        result.tables = inventory.compare(manifest.tables, restored)
        equal = sum(t.ok for t in result.tables)
        result.checks.append(
            Check("tables", equal == len(result.tables),
                  f"{equal}/{len(result.tables)} tables with the backup's rows and sample", time.monotonic() - started)
        )  # fmt: skip
        if source is not None:
            result.checks.append(_source_check(result, scratch, source, restored, manifest.sample_limit))
    except (HarnessError, asyncpg.PostgresError) as exc:
        result.checks.append(Check("restore", False, f"scratch PostgreSQL: {exc}"))
    finally:
        cluster.stop()


def _source_check(
    result: VerifyResult, scratch: Dsn, source: Dsn, restored: Sequence[inventory.TableCount], sample_limit: int
) -> Check:
    async def compare() -> list[inventory.SourceSample]:
        copy = await connect(scratch)
        try:
            live = await connect(source)
            try:
                return await inventory.compare_with_source(copy, live, restored, sample_limit)
            finally:
                await live.close()
        finally:
            await copy.close()

    started = time.monotonic()
    try:
        result.source_samples = asyncio.run(compare())
    except (HarnessError, asyncpg.PostgresError) as exc:
        return Check("source", False, f"cannot compare with {source.display()}: {exc}")
    sampled = sum(s.sampled for s in result.source_samples)
    differing = sum(s.differing for s in result.source_samples)
    return Check(
        "source", differing == 0, f"{sampled - differing}/{sampled} sampled rows equal in {source.display()}",
        time.monotonic() - started,
    )  # fmt: skip


def _replica_check(store: BackupStore, replica: BackupStore, key: str) -> Check:
    try:
        if not replica.exists(key):
            return Check("replica", False, f"{replica.url(key)} is missing")
        theirs = replica.head(key).get("Metadata", {}).get(SHA256_METADATA)
        ours = store.head(key).get("Metadata", {}).get(SHA256_METADATA)
    except HarnessError as exc:
        return Check("replica", False, str(exc))
    if not theirs or theirs != ours:
        return Check("replica", False, f"{replica.url(key)} has sha256 {theirs!r}, not the primary's")
    return Check("replica", True, f"{replica.url(key)} has the same sha256")
