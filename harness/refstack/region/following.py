"""Which region a standby follows, kept beside its PostgreSQL so that a restart knows where to forward writes.

    demote / switchover ──► <data_dir>/following.json {"primary_url": …, "forward_writes": …}
    promote             ──► removed
    start, cluster in recovery, no --primary-url ──► read: the primary's URL (its PostgreSQL address is asked of
                                                     it) and whether writes are forwarded there

PostgreSQL itself keeps only the primary's PostgreSQL address (primary_conninfo), not the region's URL that write
forwarding needs. The file sits in the region's data directory, not in the cluster's, because pg_rewind and a fresh
base backup rewrite the latter.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FILE = "following.json"


@dataclass(frozen=True)
class Following:
    primary_url: str
    forward_writes: bool


def path(region_dir: Path) -> Path:
    return region_dir / FILE


def record(region_dir: Path, following: Following) -> None:
    """Written whole or not at all (a temporary file renamed over the old one)."""
    target = path(region_dir)
    scratch = target.with_suffix(".tmp")
    scratch.write_text(json.dumps({"primary_url": following.primary_url, "forward_writes": following.forward_writes}))
    os.replace(scratch, target)


def forget(region_dir: Path) -> None:
    path(region_dir).unlink(missing_ok=True)


def recorded(region_dir: Path) -> Following | None:
    """The recorded primary, or None (no file, or one that cannot be read: logged, and the region serves reads)."""
    try:
        raw = json.loads(path(region_dir).read_text())
        return Following(primary_url=str(raw["primary_url"]), forward_writes=bool(raw.get("forward_writes", False)))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring %s: %s", path(region_dir), exc)
        return None
