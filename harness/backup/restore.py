"""`harness backup restore`: put a backup into a chosen region's database (the CLI asks for confirmation first).

    fetch: checksum ─► decrypt ─► bundle     (fetch.py; a backup that fails these is never loaded)
    roles the target lacks ─► pg_restore --clean --if-exists --single-transaction
    inventory of the target vs the manifest, for the backup's tables                         "tables"

The backup's objects replace the target's objects of the same name (tables are dropped and recreated with the
backup's rows); objects the backup does not hold are left alone. One transaction: when any statement fails (a
lock not granted within 60 s, a missing privilege), the target is as it was before.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from harness.backup import inventory, load
from harness.backup.checks import Check
from harness.backup.crypto import Keyring
from harness.backup.fetch import fetch
from harness.backup.manifest import Manifest
from harness.backup.source import Dsn
from harness.backup.store import BackupStore, Progress
from harness.errors import HarnessError
from harness.model.target_config import Secret


@dataclass
class RestoreResult:
    url: str
    target: str
    checks: list[Check] = field(default_factory=list)
    tables: list[inventory.TableComparison] = field(default_factory=list)
    manifest: Manifest | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.tables) and all(c.ok for c in self.checks) and all(t.ok for t in self.tables)


def restore_backup(
    store: BackupStore,
    key: str,
    keyring: Keyring,
    passphrase: Secret | None,
    target: Dsn,
    *,
    work_dir: Path | None = None,
    say: Progress = lambda _line: None,
) -> RestoreResult:
    started = time.monotonic()
    result = RestoreResult(store.url(key), target.display())
    try:
        _restore(result, store, key, keyring, passphrase, target, work_dir, say)
    finally:
        result.seconds = time.monotonic() - started
    return result


def _restore(
    result: RestoreResult, store: BackupStore, key: str, keyring: Keyring, passphrase: Secret | None, target: Dsn,
    work_dir: Path | None, say: Progress,
) -> None:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="harness-restore-", dir=work_dir) as tmp:
        folder = Path(tmp)
        fetched = fetch(store, key, keyring, passphrase, folder, say)
        result.checks += fetched.checks
        if fetched.opened is None or not fetched.ok:
            return
        manifest = result.manifest = fetched.opened.manifest
        say(f"restoring into {target.display()} (one transaction)")
        checks = load.load(target, fetched.opened, folder, replace_objects=True)
        result.checks += checks
        if not all(c.ok for c in checks):
            return
    started = time.monotonic()
    wanted = {t.name for t in manifest.tables}
    try:
        actual = asyncio.run(load.count(target, manifest.schemas, manifest.sample_limit))
    except (HarnessError, asyncpg.PostgresError) as exc:
        result.checks.append(Check("tables", False, f"cannot count the target's tables: {exc}"))
        return
    result.tables = inventory.compare(manifest.tables, [t for t in actual if t.name in wanted])
    equal = sum(t.ok for t in result.tables)
    result.checks.append(
        Check("tables", equal == len(result.tables), f"{equal}/{len(result.tables)} tables with the backup's rows",
              time.monotonic() - started)
    )  # fmt: skip
