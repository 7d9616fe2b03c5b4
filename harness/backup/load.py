"""Load an opened backup into a PostgreSQL server, then take its inventory (verify's scratch cluster, a restore's
target).

    roles    the backup's roles.sql minus CREATE ROLE for roles the server has: a scratch cluster gets every role
             (attributes, settings, memberships); a target that already has them all is left as it is
    restore  pg_restore: into an empty database (verify), or replacing the backup's objects in one transaction
             (restore: a failure leaves the target untouched)
    count    inventory.take with the manifest's schemas and sample size, for inventory.compare
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from harness.backup import inventory, pgtools
from harness.backup.bundle import Unpacked
from harness.backup.checks import Check
from harness.backup.source import Dsn, connect


async def existing_roles(dsn: Dsn) -> set[str]:
    conn = await connect(dsn)
    try:
        return {r["rolname"] for r in await conn.fetch("select rolname from pg_roles")}
    finally:
        await conn.close()


def load(dsn: Dsn, opened: Unpacked, folder: Path, *, replace_objects: bool, jobs: int = 1) -> list[Check]:
    """Roles, then pg_restore; the checks made (the last one failed when something did)."""
    checks: list[Check] = []
    started = time.monotonic()
    script = opened.roles.read_text()
    wanted = pgtools.role_names(script)
    have = asyncio.run(existing_roles(dsn))
    missing = [r for r in wanted if r not in have]
    if replace_objects and not missing:
        checks.append(Check("roles", True, f"the target has all {len(wanted)} roles of the backup (left as they are)"))
    else:
        filtered = folder / "roles-to-apply.sql"
        filtered.write_text(pgtools.without_existing_roles(script, have))
        try:
            pgtools.apply_roles(dsn, filtered)
        except pgtools.ToolError as exc:
            checks.append(Check("roles", False, str(exc)))
            return checks
        detail = f"{len(missing)} created, {len(wanted) - len(missing)} existed"
        checks.append(Check("roles", True, detail, time.monotonic() - started))

    started = time.monotonic()
    try:
        pgtools.restore(dsn, opened.dump, replace_objects=replace_objects, jobs=jobs)
    except pgtools.ToolError as exc:
        checks.append(Check("restore", False, str(exc)))
        return checks
    checks.append(Check("restore", True, f"pg_restore into {dsn.display()}: no errors", time.monotonic() - started))
    return checks


async def count(dsn: Dsn, schemas: tuple[str, ...], sample_limit: int) -> list[inventory.TableCount]:
    conn = await connect(dsn)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await inventory.take(conn, schemas, sample_limit)
    finally:
        await conn.close()
