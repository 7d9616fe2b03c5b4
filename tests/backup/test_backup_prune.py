"""prune on moto: backups younger than the retention stay, older ones go (dump and manifest, in both buckets), the
newest backup of a label stays whatever its age, and --dry-run deletes nothing. Ages come from the UTC stamp in the
key (moto, like S3, does not let a client set LastModified)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from harness.backup.store import stamp_of
from harness.cli import main
from tests.backup.conftest import BUCKET, REPLICA_BUCKET, Buckets


def _put_backup(buckets: Buckets, label: str, age_days: float) -> list[str]:
    stamp = stamp_of(datetime.now(UTC) - timedelta(days=age_days))
    keys = [f"backups/{label}/{stamp}.dump.gpg", f"backups/{label}/{stamp}.manifest.json"]
    for client, bucket in ((buckets.s3, BUCKET), (buckets.replica_s3, REPLICA_BUCKET)):
        for key in keys:
            client.put_object(Bucket=bucket, Key=key, Body=b"x", Metadata={"sha256": "0" * 64})
    return keys


def test_prune_keeps_what_is_younger_than_the_retention(capsys: pytest.CaptureFixture[str], buckets: Buckets) -> None:
    old = _put_backup(buckets, "sg", 45) + _put_backup(buckets, "sg", 31)
    young = _put_backup(buckets, "sg", 29) + _put_backup(buckets, "sg", 0.5)
    lone_old = _put_backup(buckets, "jp", 60)  # the only (so newest) backup of its label
    buckets.s3.put_object(Bucket=BUCKET, Key="backups/README.txt", Body=b"not a backup")
    before = buckets.objects(), buckets.objects(REPLICA_BUCKET)
    args = ["backup", "prune", *buckets.store_args(), *buckets.aws_args()]

    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert (buckets.objects(), buckets.objects(REPLICA_BUCKET)) == before  # nothing deleted
    assert out.count("would delete") == 4 + 1  # two old backups in each bucket, and the summary line

    assert main(args) == 0
    out = capsys.readouterr().out
    kept = sorted(young + lone_old)
    assert buckets.objects() == sorted([*kept, "backups/README.txt"])
    assert buckets.objects(REPLICA_BUCKET) == kept
    assert not set(old) & set(buckets.objects())
    assert "newest backup of jp" in out and "prune: 6 kept, 4 deleted" in out

    # A shorter retention removes the 29-day-old one as well; the newest of each label still stays.
    assert main([*args, "--retention-days", "7"]) == 0
    assert buckets.objects(REPLICA_BUCKET) == sorted(young[2:] + lone_old)
