"""What a harness process creates outside itself, recorded so that a later process removes it once the owner is dead.

Ctrl-C and SIGTERM run every cleanup; `kill -9` (or the OOM killer, or a lost machine) runs none. So each process
records what it creates, before creating it, in a state file of its own, and forgets it once removed:

    <state dir>/<pid>-<start time>.json
        {"pid": 4242, "create_time": 1733412345.67, "argv": ["harness", "china", "--kernel"],
         "resources": [{"kind": "netns", "name": "harness-1a2b3c"}, {"kind": "link", "name": "harness-1a2b3c"},
                       {"kind": "dir", "name": "/tmp/harness-stack-x1y2"}]}

`reap(removers)` (called by `harness net clear` and at the start of every run and shaping session) removes the
resources of every state file whose owner is dead, newest first, and the file once all are gone. An owner is alive
while a process with its pid and its start time runs (a recycled pid is another process; a zombie is dead), so a
run in progress keeps everything it recorded. Resources no state file records are never touched.

The state directory: $HARNESS_STATE_DIR; else /run/harness for root (tmpfs, emptied at boot like /run/netns);
else $XDG_RUNTIME_DIR/harness; else <temp dir>/harness-state-<uid>. It must belong to this user and be writable by
no one else (records name directories to delete), or nothing is recorded or reaped there.

Kinds: `dir` (a temporary directory, removed here) and whatever the callers bring removers for (the network
shaper's `netns`, `link` and `nft`). This module knows no kernel object.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from harness.errors import ConfigError

log = logging.getLogger(__name__)

STATE_DIR_VAR = "HARNESS_STATE_DIR"
"""Where state files live (tests point it at a folder of their own)."""
DIR = "dir"
"""Kind of a temporary directory; its name is the absolute path."""
DIR_PREFIX = "harness-"
"""Only directories named like the harness's own temporary ones are ever removed."""
MAX_POSTMASTER_DEPTH = 4
"""How deep under a directory to look for a PostgreSQL still running there (a stack's regions keep theirs at 2)."""

Remover = Callable[[str], None]
"""Removes one resource by name; idempotent (absent is done); raises when it cannot (the record is kept)."""

_lock = threading.Lock()


class UnsafeStateDir(ConfigError):
    """The state directory is not this user's alone: nothing is recorded there nor reaped from it."""


def state_dir() -> Path:
    """The state directory (see the module docstring), not created."""
    configured = os.environ.get(STATE_DIR_VAR, "").strip()
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/run/harness")
    runtime = os.environ.get("XDG_RUNTIME_DIR", "").strip()
    if runtime:
        return Path(runtime) / "harness"
    return Path(tempfile.gettempdir()) / f"harness-state-{os.geteuid()}"


def _checked_dir(create: bool) -> Path | None:
    """The state directory if it is safe to use (made 0700 when `create`); None when it does not exist."""
    path = state_dir()
    if create:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise UnsafeStateDir(
            f"{path}: the harness state directory must be a directory of uid {os.geteuid()} that no one else can "
            f"write (chmod 700 it, or set {STATE_DIR_VAR} to one)"
        )
    return path


# ---- owners -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    pid: int
    create_time: float

    @classmethod
    def current(cls) -> Owner:
        return cls(os.getpid(), round(psutil.Process().create_time(), 2))

    @property
    def file_name(self) -> str:
        return f"{self.pid}-{self.create_time:.2f}.json"

    def alive(self) -> bool:
        try:
            process = psutil.Process(self.pid)
            return round(process.create_time(), 2) == self.create_time and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
        except psutil.Error:  # not ours to inspect: it cannot be shown dead, so its resources are kept
            return True


# ---- recording (the owner) ------------------------------------------------------------------------------------------


def _own_file() -> Path | None:
    try:
        folder = _checked_dir(create=True)
    except (OSError, UnsafeStateDir) as exc:
        log.warning("leftovers: not recorded (%s)", exc)
        return None
    assert folder is not None  # create=True made it
    return folder / Owner.current().file_name


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("resources"), list) else None


def _write(path: Path, data: dict[str, Any]) -> None:
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(scratch, path)


def record(kind: str, name: str) -> None:
    """Note that this process is about to create `kind` `name` (call it before creating, so that a kill between the
    two leaves a record and not an orphan). Best effort: a state directory that cannot be used is logged."""
    with _lock:
        path = _own_file()
        if path is None:
            return
        owner = Owner.current()
        data = _read(path) or {"pid": owner.pid, "create_time": owner.create_time, "argv": sys.argv, "resources": []}
        entry = {"kind": kind, "name": name}
        if entry not in data["resources"]:
            data["resources"].append(entry)
        try:
            _write(path, data)
        except OSError as exc:
            log.warning("leftovers: could not record %s %s in %s: %s", kind, name, path, exc)


def forget(kind: str, name: str) -> None:
    """`kind` `name` was removed by its owner: drop it from the record (and the file once it is empty)."""
    with _lock:
        try:
            folder = _checked_dir(create=False)
        except UnsafeStateDir:
            return
        if folder is None:
            return
        path = folder / Owner.current().file_name
        data = _read(path)
        if data is None:
            return
        data["resources"] = [r for r in data["resources"] if r != {"kind": kind, "name": name}]
        with contextlib.suppress(OSError):
            if data["resources"]:
                _write(path, data)
            else:
                path.unlink(missing_ok=True)


def temporary_directory(prefix: str) -> Path:
    """`tempfile.mkdtemp(prefix=…)`, recorded (remove it with `remove_temporary_directory`)."""
    if not prefix.startswith(DIR_PREFIX):
        raise ValueError(f"temporary directory prefix {prefix!r} must start with {DIR_PREFIX!r}")
    # The name is recorded before the directory exists: mkdtemp's own choice is not known in advance, so a
    # name is reserved here and made with mkdir (fails if taken, like mkdtemp).
    for _ in range(100):
        path = Path(tempfile.gettempdir()) / f"{prefix}{os.urandom(6).hex()}"
        record(DIR, str(path))
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            forget(DIR, str(path))
            continue
        return path
    raise FileExistsError(f"no free temporary directory name for {prefix!r} in {tempfile.gettempdir()}")


def remove_temporary_directory(path: Path) -> None:
    """Remove a directory made by `temporary_directory` and forget it."""
    shutil.rmtree(path, ignore_errors=True)
    if not path.exists():
        forget(DIR, str(path))


# ---- reaping (any later process) --------------------------------------------------------------------------------


def remove_dir(name: str) -> None:
    """The `dir` remover: a harness temporary directory, unless a PostgreSQL still runs in it (next time, then)."""
    path = Path(name)
    if not path.is_absolute() or not path.name.startswith(DIR_PREFIX) or path.is_symlink():
        raise ValueError(f"{name}: not a harness temporary directory; left alone")
    if not path.exists():
        return
    for pid_file in _postmaster_files(path):
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pid_file.read_text().split()[0])
            if psutil.pid_exists(pid):
                raise RuntimeError(f"{name}: PostgreSQL (pid {pid}) still runs in it; try again once it has stopped")
    shutil.rmtree(path)


def _postmaster_files(root: Path) -> list[Path]:
    found: list[Path] = []
    level = [root]
    for _ in range(MAX_POSTMASTER_DEPTH):
        below: list[Path] = []
        for folder in level:
            with contextlib.suppress(OSError):
                for child in folder.iterdir():
                    if child.name == "postmaster.pid":
                        found.append(child)
                    elif child.is_dir() and not child.is_symlink():
                        below.append(child)
        level = below
    return found


@dataclass(frozen=True)
class Record:
    path: Path
    owner: Owner
    argv: list[str]
    resources: list[tuple[str, str]]


def records() -> list[Record]:
    """Every state file in the state directory (UnsafeStateDir if it is not this user's alone)."""
    folder = _checked_dir(create=False)
    if folder is None:
        return []
    out: list[Record] = []
    for path in sorted(folder.glob("*.json")):
        data = _read(path)
        if data is None:
            continue
        try:
            owner = Owner(int(data["pid"]), float(data["create_time"]))
            resources = [(str(r["kind"]), str(r["name"])) for r in data["resources"]]
        except (KeyError, TypeError, ValueError):
            continue
        argv = [str(a) for a in data.get("argv", [])] if isinstance(data.get("argv"), list) else []
        out.append(Record(path, owner, argv, resources))
    return out


@dataclass(frozen=True)
class Reaped:
    removed: list[str]
    """`<kind> <name> (pid <pid>)` of each resource removed."""
    failed: list[str]
    """`<kind> <name>: <why>` of each resource that could not be removed (its record is kept)."""
    live: list[str]
    """`<kind> <name> (pid <pid>, running)` of the resources of live owners: left alone."""


def reap(removers: Mapping[str, Remover]) -> Reaped:
    """Remove the recorded resources of every dead owner (kinds without a remover are kept), last created first."""
    removed: list[str] = []
    failed: list[str] = []
    live: list[str] = []
    with _lock:
        for found in records():
            if found.owner.alive():
                live += [f"{kind} {name} (pid {found.owner.pid}, running)" for kind, name in found.resources]
                continue
            left: list[tuple[str, str]] = []
            for kind, name in reversed(found.resources):
                remover = removers.get(kind)
                if remover is None:
                    left.append((kind, name))
                    failed.append(f"{kind} {name}: nothing here removes a {kind!r}")
                    continue
                try:
                    remover(name)
                except Exception as exc:  # any failure keeps the record for a later try
                    left.append((kind, name))
                    failed.append(f"{kind} {name}: {exc}")
                    continue
                removed.append(f"{kind} {name} (pid {found.owner.pid})")
            with contextlib.suppress(OSError):
                if left:
                    data = _read(found.path) or {}
                    data["resources"] = [{"kind": k, "name": n} for k, n in reversed(left)]
                    _write(found.path, data)
                else:
                    found.path.unlink(missing_ok=True)
    return Reaped(removed, failed, live)
