"""PostgreSQL's own client programs, as a backup uses them (binaries from harness.refstack.postgres.binaries).

    dump(dsn, snapshot, out)     pg_dump -Fc --snapshot: the database as the inventory saw it
    dump_roles(dsn)              pg_dumpall --roles-only --no-role-passwords: the roles that owners, grants and
                                 policies name (anon, authenticated, service_role...), which pg_dump leaves out
    apply_roles(dsn, script)     psql, one transaction, skipping CREATE ROLE for roles the server already has
    restore(dsn, dump, ...)      pg_restore; any error fails (never "errors ignored on restore")

They run as the harness's own user (client programs may run as root; only the server may not) and talk TCP.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from harness.backup.source import Dsn
from harness.errors import TargetUnreachable
from harness.refstack.postgres import binaries

TIMEOUT_S = 6 * 3600
"""An upper bound on any one program (a large dump or restore); only there so nothing hangs forever."""
LOCK_TIMEOUT = "60s"
"""A restore into a live server waits this long for a table's lock, then fails (and rolls back) instead of hanging."""
_CREATE_ROLE = re.compile(r'^CREATE ROLE ("(?:[^"]|"")+"|[^\s;]+);$')


class ToolError(TargetUnreachable):
    """A PostgreSQL program failed; the message holds its error lines."""


def _run(program: str, args: Sequence[str], dsn: Dsn, what: str, extra_env: dict[str, str] | None = None) -> str:
    argv = [binaries.tool(program), *args]
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, check=False, env={**dsn.env(), **(extra_env or {})},
            timeout=TIMEOUT_S, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise ToolError(f"{what}: {program} did not finish in {TIMEOUT_S} s") from None
    if result.returncode != 0:
        raise ToolError(f"{what} failed ({program} exit {result.returncode}): {_errors(result.stderr)}")
    return result.stdout


def _errors(stderr: str, limit: int = 6) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    picked = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()] or lines
    more = f" (+{len(picked) - limit} more)" if len(picked) > limit else ""
    return " | ".join(picked[:limit]) + more


def version(program: str) -> str:
    """`pg_dump (PostgreSQL) 18.1` → "18.1"."""
    out = subprocess.run([binaries.tool(program), "--version"], capture_output=True, text=True, check=False).stdout
    return out.strip().rsplit(" ", 1)[-1] if out.strip() else "unknown"


def dump(dsn: Dsn, snapshot: str | None, out: Path) -> None:
    args = ["--format=custom", "--no-sync", "--file", str(out), "--dbname", dsn.url()]
    if snapshot:
        args.append(f"--snapshot={snapshot}")
    _run("pg_dump", args, dsn, f"pg_dump of {dsn.display()}")


def dump_roles(dsn: Dsn) -> str:
    return _run(
        "pg_dumpall", ["--roles-only", "--no-role-passwords", "--dbname", dsn.url()], dsn,
        f"pg_dumpall --roles-only of {dsn.display()}",
    )  # fmt: skip


def role_names(script: str) -> list[str]:
    """The roles a pg_dumpall --roles-only script creates."""
    return [_unquote(m[1]) for line in script.splitlines() if (m := _CREATE_ROLE.match(line.strip()))]


def without_existing_roles(script: str, existing: set[str]) -> str:
    """The script minus `CREATE ROLE x;` for roles already there (its ALTER ROLE lines still set their attributes).

    pg_dumpall writes one CREATE ROLE per line; the line alone is dropped, so the script stays otherwise as written.
    """
    kept = []
    for line in script.splitlines():
        match = _CREATE_ROLE.match(line.strip())
        if match and _unquote(match[1]) in existing:
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def apply_roles(dsn: Dsn, script_path: Path) -> None:
    _run(
        "psql", ["--no-psqlrc", "--quiet", "--single-transaction", "-v", "ON_ERROR_STOP=1", "--file",
                 str(script_path), "--dbname", dsn.url()],
        dsn, f"creating the backup's roles on {dsn.display()}",
    )  # fmt: skip


def restore(dsn: Dsn, dump_path: Path, *, replace_objects: bool, jobs: int = 1) -> None:
    """pg_restore into dsn's database. replace_objects: --clean --if-exists in one transaction (a failure leaves the
    target as it was); otherwise into an empty database, with `jobs` parallel workers."""
    args = ["--no-password", "--dbname", dsn.url()]
    if replace_objects:
        args += ["--clean", "--if-exists", "--single-transaction"]
    else:
        args += ["--exit-on-error", f"--jobs={max(1, jobs)}"]
    _run(
        "pg_restore", [*args, str(dump_path)], dsn, f"pg_restore into {dsn.display()}",
        extra_env={"PGOPTIONS": f"-c lock_timeout={LOCK_TIMEOUT}"},
    )  # fmt: skip
