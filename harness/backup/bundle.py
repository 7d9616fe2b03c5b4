"""The plaintext inside a backup object: one uncompressed tar (pg_dump compressed the dump already).

    manifest.json       the inventory at backup time (harness.backup.manifest)
    roles.sql           pg_dumpall --roles-only --no-role-passwords
    database.pgdump     pg_dump --format=custom

`unpack` accepts exactly these three regular files (tarfile's "data" filter: no links, devices or paths outside the
folder), so a tampered bundle cannot write anywhere else.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path

from harness.backup.manifest import Manifest
from harness.errors import ConfigError

MANIFEST = "manifest.json"
ROLES = "roles.sql"
DUMP = "database.pgdump"
MEMBERS = (MANIFEST, ROLES, DUMP)


class BundleError(Exception):
    """The decrypted bytes are not a backup bundle."""


@dataclass(frozen=True)
class Unpacked:
    manifest: Manifest
    roles: Path
    dump: Path


def pack(folder: Path, manifest: Manifest, roles_sql: str, dump: Path, out: Path) -> None:
    (folder / MANIFEST).write_text(manifest.to_json())
    (folder / ROLES).write_text(roles_sql)
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in ((MANIFEST, folder / MANIFEST), (ROLES, folder / ROLES), (DUMP, dump)):
            tar.add(path, arcname=name, recursive=False)


def unpack(tar_path: Path, folder: Path) -> Unpacked:
    try:
        with tarfile.open(tar_path, "r:") as tar:
            names = sorted(m.name for m in tar.getmembers())
            if names != sorted(MEMBERS) or not all(m.isfile() for m in tar.getmembers()):
                raise BundleError(f"holds {names}, not the bundle's {list(MEMBERS)}")
            tar.extractall(folder, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"not a tar archive ({exc})") from None
    try:
        manifest = Manifest.from_json((folder / MANIFEST).read_bytes(), "the bundle's manifest.json")
    except (ConfigError, UnicodeDecodeError) as exc:
        raise BundleError(str(exc)) from None
    return Unpacked(manifest, folder / ROLES, folder / DUMP)
