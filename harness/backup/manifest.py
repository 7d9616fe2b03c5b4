"""A backup's manifest: what was dumped, from where, when, and what the database held at that moment.

Two copies with one schema:
- inside the encrypted bundle (`manifest.json`): the table inventory `verify` compares a restored copy with. It
  travels with the dump, so it cannot drift from it, and it is as secret as the data.
- beside the object in S3 (`<stamp>.manifest.json`, plain JSON): the same plus the encrypted object's size and
  SHA-256. It holds table names, row counts, sizes and digests, no row data, so `prune`, an operator or a
  dashboard can see what a backup holds without the private key.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from harness.backup.inventory import TableCount
from harness.errors import ConfigError
from harness.model.files import parse_json

FORMAT = "harness-backup/1"


@dataclass(frozen=True)
class Manifest:
    label: str
    created_at: str
    """UTC, ISO 8601, the moment the dump's snapshot was taken."""
    source: str
    """user@host:port/database (never a password)."""
    server_version: str
    pg_dump_version: str
    dump_bytes: int
    """The pg_dump file (custom format, compressed by pg_dump)."""
    tables: tuple[TableCount, ...]
    schemas: tuple[str, ...]
    sample_limit: int
    """Rows per table in each sample digest (the first N by primary key)."""
    recipients: tuple[str, ...] = ()
    """Fingerprints of the GPG keys the bundle is encrypted to."""
    key: str | None = None
    """S3 key of the encrypted object (outer copy only)."""
    encrypted_bytes: int | None = None
    sha256: str | None = None
    """SHA-256 of the encrypted object, as in its x-amz-meta-sha256 (outer copy only)."""
    format: str = field(default=FORMAT)

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def outer(self, key: str, encrypted_bytes: int, sha256: str) -> Manifest:
        return replace(self, key=key, encrypted_bytes=encrypted_bytes, sha256=sha256)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, where: str) -> Manifest:
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise ConfigError(f"{where}: not UTF-8 text, so not a harness backup manifest") from None
        data = parse_json(text, where)
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: not a harness backup manifest (a JSON object with format {FORMAT!r})")
        try:
            if data.get("format") != FORMAT:
                raise ConfigError(f"{where}: format {data.get('format')!r} is not {FORMAT!r}")
            tables = tuple(_table(t) for t in data["tables"])
            return cls(**{**data, "tables": tables, "schemas": tuple(data["schemas"]),
                          "recipients": tuple(data.get("recipients", ()))})  # fmt: skip
        except (ValueError, KeyError, TypeError, OverflowError) as exc:
            raise ConfigError(f"{where}: not a harness backup manifest ({exc})") from None


def _table(t: dict[str, Any]) -> TableCount:
    return TableCount(
        t["schema"], t["table"], int(t["rows"]), tuple(t["key"]), tuple(t["key_types"]), int(t["sample_rows"]),
        t["sample_sha256"],
    )  # fmt: skip
