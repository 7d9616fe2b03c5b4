"""Backups in S3: where each one lives, and the few calls made on them (boto3 through harness.dr.aws).

    s3://BUCKET/PREFIX/LABEL/20250101T020000Z.dump.gpg        the encrypted bundle, x-amz-meta-sha256 = its SHA-256
    s3://BUCKET/PREFIX/LABEL/20250101T020000Z.manifest.json   the plain manifest (harness.backup.manifest)

The UTC timestamp in the key is the backup's identity and age: "latest" is the greatest one, and `prune` ages
backups by it (S3's LastModified changes when an object is copied or restored from an archive tier, and moto cannot
set it). Uploads above --multipart-threshold-mb go in parts (boto3's transfer manager); the replica bucket gets a
server-side copy, metadata included, the way the deployment's cross-region replication would.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.exceptions
from boto3.s3.transfer import TransferConfig

from harness.dr.aws import AwsSettings
from harness.errors import ConfigError, TargetUnreachable

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
DUMP_SUFFIX = ".dump.gpg"
MANIFEST_SUFFIX = ".manifest.json"
SHA256_METADATA = "sha256"
"""Object metadata name; S3 shows it as the header x-amz-meta-sha256."""
DEFAULT_PREFIX = "backups/"
MIB = 1024 * 1024
_KEY = re.compile(r"^(?P<label>.+)/(?P<stamp>\d{8}T\d{6}Z)(?P<suffix>\.dump\.gpg|\.manifest\.json)$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
Progress = Callable[[str], None]


def check_label(label: str) -> str:
    if not _LABEL.match(label):
        raise ConfigError(
            f"--label {label!r}: use letters, digits, '.', '_' or '-' (up to 63, e.g. ap-southeast-1): it becomes "
            "a folder of the S3 key"
        )
    return label


def stamp_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(STAMP_FORMAT)


def parse_stamp(stamp: str) -> datetime:
    return datetime.strptime(stamp, STAMP_FORMAT).replace(tzinfo=UTC)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, order=True)
class BackupRef:
    """One backup: its label and timestamp, and the keys of its objects that exist."""

    stamp: str
    label: str
    keys: tuple[str, ...] = field(default=(), compare=False)

    @property
    def created(self) -> datetime:
        return parse_stamp(self.stamp)


_HINTS = {
    "NoSuchBucket": "the bucket does not exist; create it or fix --bucket/--replica-bucket",
    **dict.fromkeys(
        ("NoSuchKey", "404", "NotFound"), "no such object; without --key, verify and restore take the latest backup"
    ),
    **dict.fromkeys(
        ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"),
        "access denied ({code}); check the AWS credentials and the bucket policy",
    ),
}


@contextlib.contextmanager
def s3_errors(what: str) -> Iterator[None]:
    """boto3 errors as the harness's: a missing bucket or key is the user's to fix (exit 2), as is a dead endpoint."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        hint = _HINTS.get(code)
        if hint:
            raise ConfigError(f"{what}: {hint.format(code=code)}") from None
        raise TargetUnreachable(f"{what}: S3 answered {code}: {error.get('Message', exc)}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise TargetUnreachable(f"{what}: {exc}") from None


class _TransferProgress:
    """boto3's transfer callback (called from its worker threads) as one stderr line a second at most."""

    def __init__(self, say: Progress, verb: str, total: int) -> None:
        self._say, self._verb, self._total = say, verb, total
        self._done = 0
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, amount: int) -> None:
        with self._lock:
            self._done += amount
            now = time.monotonic()
            if self._done < self._total and now - self._last < 1.0:
                return
            self._last = now
            self._say(f"{self._verb} {self._done / MIB:.1f}/{self._total / MIB:.1f} MiB")


class BackupStore:
    """One bucket (and prefix) of backups."""

    def __init__(self, settings: AwsSettings, bucket: str, prefix: str = DEFAULT_PREFIX, region: str | None = None):
        if not bucket:
            raise ConfigError("no bucket: give --bucket NAME (or set HARNESS_BACKUP_BUCKET)")
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.region = region
        self.client: Any = settings.client("s3", region=region)

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def check_bucket(self) -> None:
        """ConfigError unless the bucket exists and answers: checked before an hour-long dump, not after."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchBucket", "NotFound"):
                raise ConfigError(
                    f"bucket {self.bucket} does not exist ({self.region or 'default region'}): create it, or fix "
                    "--bucket/--replica-bucket"
                ) from None
            with s3_errors(f"reaching bucket {self.bucket}"):
                raise
        except botocore.exceptions.BotoCoreError as exc:
            raise TargetUnreachable(f"reaching bucket {self.bucket}: {exc}") from None

    def dump_key(self, label: str, stamp: str) -> str:
        return f"{self.prefix}{label}/{stamp}{DUMP_SUFFIX}"

    def manifest_key(self, label: str, stamp: str) -> str:
        return f"{self.prefix}{label}/{stamp}{MANIFEST_SUFFIX}"

    def ref_of(self, key: str) -> BackupRef | None:
        if not key.startswith(self.prefix):
            return None
        match = _KEY.match(key[len(self.prefix) :])
        if match is None:
            return None
        try:
            parse_stamp(match["stamp"])
        except ValueError:
            return None
        return BackupRef(match["stamp"], match["label"], (key,))

    # -- listing ----------------------------------------------------------------------------------------------------
    def listing(self) -> tuple[list[BackupRef], list[str]]:
        """Every backup under the prefix (oldest first), and the keys there that are not a backup's."""
        grouped: dict[tuple[str, str], list[str]] = {}
        others: list[str] = []
        with s3_errors(f"listing {self.url(self.prefix)}"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", []):
                    ref = self.ref_of(item["Key"])
                    if ref is None:
                        others.append(item["Key"])
                    else:
                        grouped.setdefault((ref.stamp, ref.label), []).append(item["Key"])
        refs = [BackupRef(stamp, label, tuple(sorted(keys))) for (stamp, label), keys in grouped.items()]
        return sorted(refs), others

    def latest(self, label: str | None) -> BackupRef:
        refs = [r for r in self.listing()[0] if label is None or r.label == label]
        refs = [r for r in refs if self.dump_key(r.label, r.stamp) in r.keys]
        if not refs:
            which = f" with --label {label}" if label else ""
            raise ConfigError(f"no backup{which} under {self.url(self.prefix)}: run `harness backup create` first")
        return refs[-1]

    # -- objects ----------------------------------------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except botocore.exceptions.ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                return False
            with s3_errors(f"looking at {self.url(key)}"):
                raise

    def head(self, key: str) -> dict[str, Any]:
        with s3_errors(f"reading {self.url(key)}"):
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=key)
        return head

    def upload(self, path: Path, key: str, metadata: dict[str, str], config: TransferConfig, say: Progress) -> None:
        size = path.stat().st_size
        with s3_errors(f"uploading {self.url(key)}"):
            self.client.upload_file(
                str(path), self.bucket, key, ExtraArgs={"Metadata": metadata}, Config=config,
                Callback=_TransferProgress(say, f"upload {self.url(key)}:", size),
            )  # fmt: skip

    def put_text(self, key: str, text: str, content_type: str = "application/json") -> None:
        with s3_errors(f"uploading {self.url(key)}"):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=text.encode(), ContentType=content_type)

    def get_text(self, key: str) -> str:
        with s3_errors(f"reading {self.url(key)}"):
            return str(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode())

    def copy_from(self, source: BackupStore, key: str, config: TransferConfig) -> None:
        """Server-side copy of source's `key` into this bucket under the same key, metadata kept."""
        metadata = source.head(key).get("Metadata", {})
        with s3_errors(f"copying {source.url(key)} to {self.url(key)}"):
            self.client.copy(
                {"Bucket": source.bucket, "Key": key}, self.bucket, key,
                ExtraArgs={"Metadata": metadata, "MetadataDirective": "REPLACE"}, SourceClient=source.client,
                Config=config,
            )  # fmt: skip

    def download(self, key: str, path: Path, say: Progress) -> None:
        size = int(self.head(key).get("ContentLength", 0))
        with s3_errors(f"downloading {self.url(key)}"):
            self.client.download_file(
                self.bucket, key, str(path), Callback=_TransferProgress(say, f"download {self.url(key)}:", size)
            )

    def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes up to 1,000 keys a call
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            with s3_errors(f"deleting from {self.url(self.prefix)}"):
                answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise TargetUnreachable(
                    f"S3 refused to delete {len(answer['Errors'])} objects of {self.url(self.prefix)}: "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )


def transfer_config(multipart_threshold_mb: float) -> TransferConfig:
    """Parts above the threshold; parts at least 16 MiB (S3 allows 10,000 parts: 160 GiB before boto3 grows them)."""
    threshold = max(1, int(multipart_threshold_mb * MIB))
    return TransferConfig(multipart_threshold=threshold, multipart_chunksize=max(threshold, 16 * MIB))
