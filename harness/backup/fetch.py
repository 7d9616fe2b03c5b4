"""Bring one backup down and open it, each step a Check (verify and restore share it):

    head (x-amz-meta-sha256) ─► download ─► sha256 equal? ─► gpg --decrypt ─► tar: manifest, roles, dump
           "checksum"                         "checksum"        "decrypt"          "bundle"

The first failing step ends it: a corrupted object is never decrypted, a bundle that does not decrypt is never
restored. The plaintext lands in the caller's private temporary folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.backup import bundle
from harness.backup.checks import Check
from harness.backup.crypto import DecryptError, Keyring
from harness.backup.store import MIB, SHA256_METADATA, BackupStore, Progress, sha256_of
from harness.model.target_config import Secret


@dataclass
class Fetched:
    url: str
    encrypted_bytes: int = 0
    checks: list[Check] = field(default_factory=list)
    opened: bundle.Unpacked | None = None

    @property
    def ok(self) -> bool:
        return self.opened is not None and all(c.ok for c in self.checks)


def fetch(
    store: BackupStore, key: str, keyring: Keyring, passphrase: Secret | None, folder: Path, say: Progress
) -> Fetched:
    result = Fetched(store.url(key))
    head = store.head(key)
    expected = str(head.get("Metadata", {}).get(SHA256_METADATA, "")).lower()
    result.encrypted_bytes = int(head.get("ContentLength", 0))
    if not expected:
        result.checks.append(Check("checksum", False, f"the object has no x-amz-meta-{SHA256_METADATA}"))
        return result

    started = time.monotonic()
    encrypted = folder / "bundle.tar.gpg"
    store.download(key, encrypted, say)
    actual = sha256_of(encrypted)
    if actual != expected:
        result.checks.append(
            Check("checksum", False, f"corrupted: sha256 {actual[:16]}… is not the recorded {expected[:16]}…")
        )
        return result
    result.checks.append(
        Check("checksum", True, f"sha256 {actual[:16]}… as recorded, {result.encrypted_bytes / MIB:.1f} MiB",
              time.monotonic() - started)
    )  # fmt: skip

    started = time.monotonic()
    tar_path = folder / "bundle.tar"
    try:
        keyring.decrypt(encrypted, tar_path, passphrase)
    except DecryptError as exc:
        tar_path.unlink(missing_ok=True)
        result.checks.append(Check("decrypt", False, str(exc)))
        return result
    finally:
        encrypted.unlink(missing_ok=True)
    result.checks.append(Check("decrypt", True, f"with the keyring {keyring.describe()}", time.monotonic() - started))

    contents = folder / "bundle"
    contents.mkdir()
    try:
        result.opened = bundle.unpack(tar_path, contents)
    except bundle.BundleError as exc:
        result.checks.append(Check("bundle", False, f"the decrypted object is not a backup bundle: {exc}"))
        return result
    finally:
        tar_path.unlink(missing_ok=True)
    m = result.opened.manifest
    result.checks.append(
        Check("bundle", True, f"{m.label} at {m.created_at}, PostgreSQL {m.server_version}, {len(m.tables)} tables")
    )
    return result
