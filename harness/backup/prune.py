"""`harness backup prune`: delete backups older than the retention (30 days by default) in each bucket.

    for each bucket (primary, replica):  list PREFIX ─► group objects by (label, stamp)
        age = now - the UTC stamp in the key  (not LastModified: a copy or an archive restore resets that, and
                                               moto cannot set it; the stamp is when the dump's snapshot was taken)
        younger than the retention            keep
        the newest backup of its label        keep, whatever its age: a source that stopped backing up keeps its
                                              last good copy instead of losing everything 30 days later
        otherwise                             delete (dump and manifest together)

Objects under the prefix that are not named like a backup are left alone. With --dry-run nothing is deleted. A
bucket with S3 lifecycle rules or object lock may make this redundant or refuse it; versioned buckets keep
noncurrent versions until their own lifecycle removes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from harness.backup.store import BackupRef, BackupStore, Progress

DEFAULT_RETENTION_DAYS = 30


@dataclass(frozen=True)
class Decision:
    location: str
    """s3://BUCKET/PREFIX"""
    ref: BackupRef
    keep: bool
    reason: str


@dataclass
class PruneResult:
    decisions: list[Decision] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    """Keys under the prefix that are not a backup's (left alone)."""
    dry_run: bool = False

    @property
    def deleted(self) -> list[Decision]:
        return [d for d in self.decisions if not d.keep]

    @property
    def kept(self) -> list[Decision]:
        return [d for d in self.decisions if d.keep]


def plan(refs: Sequence[BackupRef], now: datetime, retention_days: float, location: str = "") -> list[Decision]:
    cutoff = now - timedelta(days=retention_days)
    newest = {ref.label: ref for ref in sorted(refs)}  # the last one per label wins
    out: list[Decision] = []
    for ref in sorted(refs):
        age_days = (now - ref.created).total_seconds() / 86400
        if ref.created >= cutoff:
            out.append(Decision(location, ref, True, f"{age_days:.1f} days old, within {retention_days:g} days"))
        elif newest[ref.label] is ref:
            out.append(Decision(location, ref, True, f"{age_days:.1f} days old, but the newest backup of {ref.label}"))
        else:
            out.append(Decision(location, ref, False, f"{age_days:.1f} days old, beyond {retention_days:g} days"))
    return out


def prune_backups(
    stores: Sequence[BackupStore],
    retention_days: float = DEFAULT_RETENTION_DAYS,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    say: Progress = lambda _line: None,
) -> PruneResult:
    moment = now or datetime.now(UTC)
    result = PruneResult(dry_run=dry_run)
    for store in stores:
        refs, others = store.listing()
        result.ignored += [store.url(k) for k in others]
        decisions = plan(refs, moment, retention_days, store.url(store.prefix))
        result.decisions += decisions
        doomed = [key for d in decisions if not d.keep for key in d.ref.keys]
        if doomed and not dry_run:
            say(f"deleting {len(doomed)} objects from {store.url(store.prefix)}")
            store.delete(doomed)
    return result
