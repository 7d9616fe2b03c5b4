"""A run's reports in S3 (boto3 through harness.dr.aws).

    --results-url s3://BUCKET/PREFIX      a run uploads to s3://BUCKET/PREFIX/<run-id>/{result.json, junit.xml,
                                          summary.md, report.html, *.svg}
    harness gate s3://BUCKET/KEY.json     reads that result (downloaded to a temporary folder, removed after);
    harness report s3://BUCKET/PREFIX/ID  a URL not ending in .json is a run folder (its result.json)

Uploading a run's own reports changes nothing of the deployment, so unlike a DNS flip it needs no
--confirm-remote; the credentials are checked before the run starts, so a five-minute load never ends in a
failed upload for lack of them. Credentials are never printed (harness.dr.aws).
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3.exceptions
import botocore.exceptions

from harness.dr.aws import AwsSettings
from harness.errors import ConfigError, TargetUnreachable

SCHEME = "s3://"
UPLOADED = ("result.json", "junit.xml", "summary.md", "report.html")
"""The reports every run writes; charts (*.svg, *.png) beside them go too, so report.html's images resolve."""
CHART_SUFFIXES = (".svg", ".png")
CONTENT_TYPES = {
    ".json": "application/json",
    ".xml": "application/xml",
    ".md": "text/markdown; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")  # S3's bucket naming rules (lower case, 3-63)
_EXAMPLE = "e.g. s3://my-bucket/harness/results"


def is_s3_url(text: str) -> bool:
    return text.startswith(SCHEME)


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str
    """A key prefix (no trailing slash) or an object key."""

    @classmethod
    def parse(cls, url: str, flag: str) -> S3Location:
        if not is_s3_url(url):
            raise ConfigError(f"{flag}: {url!r} is not an S3 URL ({_EXAMPLE})")
        bucket, _, key = url[len(SCHEME) :].partition("/")
        if not _BUCKET.match(bucket):
            raise ConfigError(
                f"{flag}: {bucket!r} is not an S3 bucket name (3-63 lower-case letters, digits, '.' or '-'; {_EXAMPLE})"
            )
        key = key.strip("/")
        if any(part in ("", ".", "..") for part in key.split("/")) and key:
            raise ConfigError(f"{flag}: {url!r} has an empty, '.' or '..' part in its key ({_EXAMPLE})")
        return cls(bucket, key)

    def child(self, name: str) -> S3Location:
        return S3Location(self.bucket, f"{self.key}/{name}" if self.key else name)

    @property
    def url(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"


class ResultsStore:
    """Where a run's reports go (--results-url), checked before the run: URL, credentials, bucket reachable."""

    def __init__(self, url: str, settings: AwsSettings, flag: str = "--results-url") -> None:
        self.base = S3Location.parse(url, flag)
        self.settings = settings
        self._client: Any = None

    def check(self) -> ResultsStore:
        """ConfigError now rather than a failed upload after the run: credentials present, bucket exists."""
        self._client = self.settings.client("s3")
        _call(lambda: self._client.head_bucket(Bucket=self.base.bucket), self.base, self.settings, bucket_call=True)
        return self

    def upload_run(self, out_dir: Path, run_id: str) -> tuple[str, list[str]]:
        """Upload the run folder's reports under BASE/<run-id>/; returns (folder URL, uploaded names)."""
        client = self._client or self.check()._client
        folder = self.base.child(run_id)
        names = list(_report_files(out_dir))
        for name in names:
            path = out_dir / name
            target = folder.child(name)
            extra = {"ContentType": CONTENT_TYPES.get(path.suffix, "application/octet-stream")}
            _call(
                lambda p=path, t=target, e=extra: client.upload_file(str(p), t.bucket, t.key, ExtraArgs=e),
                target,
                self.settings,
            )
        return folder.url, names


def _report_files(out_dir: Path) -> Iterable[str]:
    for name in UPLOADED:
        if (out_dir / name).is_file():
            yield name
    for path in sorted(out_dir.iterdir()):
        if path.is_file() and path.suffix in CHART_SUFFIXES:
            yield path.name


@contextlib.contextmanager
def downloaded(url: str, settings: AwsSettings, flag: str = "RESULT") -> Iterator[Path]:
    """The result.json an s3:// URL names (an object ending in .json, or a run folder's result.json), downloaded
    into a temporary folder that is removed when the block ends."""
    location = S3Location.parse(url, flag)
    if not location.key.endswith(".json"):
        location = location.child("result.json")
    client = settings.client("s3")
    with tempfile.TemporaryDirectory(prefix="harness-s3-") as folder:
        dest = Path(folder) / "result.json"
        try:
            _call(lambda: client.download_file(location.bucket, location.key, str(dest)), location, settings)
        except ConfigError:
            # A GET/HEAD of a key in a missing bucket is a bare 404 too: say which of the two is missing.
            _call(lambda: client.head_bucket(Bucket=location.bucket), location, settings, bucket_call=True)
            raise
        yield dest


def _call(action: Any, location: S3Location, settings: AwsSettings, *, bucket_call: bool = False) -> Any:
    """Run one S3 call; a missing bucket or key is a ConfigError naming it, an unreachable endpoint (refused,
    timed out, connection dropped) a TargetUnreachable: never a traceback, and never exit 1, which would read as a
    red verdict. botocore's messages name the operation and the endpoint, never the credentials."""
    try:
        return action()
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code == "NoSuchBucket" or (bucket_call and code in ("404", "NotFound")):  # HEAD has no body: bare 404
            raise ConfigError(
                f"{location.url}: bucket {location.bucket!r} does not exist at {settings.describe()}"
            ) from None
        if code in ("404", "NoSuchKey", "NotFound"):
            raise ConfigError(f"{location.url}: no such object in S3 at {settings.describe()}") from None
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise ConfigError(
                f"{location.url}: access denied by {settings.describe()} ({code}); check the credentials' S3 "
                "permissions (s3:PutObject to upload, s3:GetObject to read)"
            ) from None
        raise TargetUnreachable(f"{location.url}: S3 answered {code or 'an error'} at {settings.describe()}") from None
    except boto3.exceptions.S3UploadFailedError as exc:
        raise TargetUnreachable(f"{location.url}: upload failed at {settings.describe()}: {exc}") from None
    except botocore.exceptions.BotoCoreError as exc:  # connect/read timeouts, dropped connections, TLS errors, ...
        raise TargetUnreachable(
            f"{location.url}: cannot reach S3 at {settings.describe()}: {type(exc).__name__}: {exc}"
        ) from None
