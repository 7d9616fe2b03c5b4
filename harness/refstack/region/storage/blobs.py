"""Object bodies as content-addressed files: `<data_dir>/objects/<sha256>`.

    upload body ──chunks──► BlobWriter (.tmp/<random>, hashing as it writes) ──commit──► objects/<sha256>
    storage_objects row (content_sha256) ──► replicated through the change log; the blob itself is not

Content addressing makes a blob immutable and shareable (an overwrite or a copy writes a new row, never a file in
place), and lets a replica that received a row but not its blob fetch it from the primary later by hash: set
`app[BLOB_FETCHER]` to an async callable `sha256 -> bytes | None` and `blob_path` will use it on a miss.

With no data_dir (tests), blobs go to a temporary directory created for the app and removed on cleanup.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO

from aiohttp import web

from harness.refstack.region.config import RegionConfig

BlobFetcher = Callable[[str], Awaitable[bytes | None]]

_SHA256 = re.compile(r"[0-9a-f]{64}")


class BlobStore:
    def __init__(self, root: Path, *, temporary: bool = False) -> None:
        self.root = root
        self.temporary = temporary
        """Whether `root` was made for this app and is removed by `close` (memory-only mode)."""
        self._tmp = root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        # Uploads interrupted by a crash leave partial files behind; nothing else refers to them.
        for stale in self._tmp.iterdir():
            with contextlib.suppress(OSError):
                stale.unlink()

    @classmethod
    def for_config(cls, config: RegionConfig) -> BlobStore:
        if config.data_dir is None:
            return cls(Path(tempfile.mkdtemp(prefix=f"harness-storage-{config.region}-")), temporary=True)
        return cls(config.data_dir / "objects")

    def path(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a lowercase hex sha256: {sha256!r}")
        return self.root / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def writer(self) -> BlobWriter:
        return BlobWriter(self)

    def put_bytes(self, data: bytes) -> str:
        writer = self.writer()
        writer.write(data)
        return writer.commit()

    def remove(self, sha256: str) -> None:
        """Delete a blob no row refers to any more (the caller checks that)."""
        with contextlib.suppress(FileNotFoundError):
            self.path(sha256).unlink()

    def close(self) -> None:
        if self.temporary:
            shutil.rmtree(self.root, ignore_errors=True)


class BlobWriter:
    """One upload in progress: a temp file being written and hashed; `commit` files it under its hash."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        self._tmp_path = store._tmp / uuid.uuid4().hex
        self._file: IO[bytes] | None = open(self._tmp_path, "wb")  # noqa: SIM115 (closed in commit/discard)
        self._hash = hashlib.sha256()
        self.size_bytes = 0

    def write(self, chunk: bytes) -> None:
        assert self._file is not None, "writer already committed or discarded"
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size_bytes += len(chunk)

    def commit(self) -> str:
        assert self._file is not None, "writer already committed or discarded"
        self._file.close()
        self._file = None
        sha256 = self._hash.hexdigest()
        target = self._store.path(sha256)
        if target.exists():
            self._tmp_path.unlink()  # same bytes already stored
        else:
            os.replace(self._tmp_path, target)
        return sha256

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            self._tmp_path.unlink()


BLOBS = web.AppKey("storage_blobs", BlobStore)
BLOB_FETCHER: web.AppKey[BlobFetcher] = web.AppKey("storage_blob_fetcher")
"""Optional: how a replica gets a blob it lacks from the primary (set by the replication engine)."""


def store_blob_bytes(app: web.Application, data: bytes) -> str:
    """Store bytes as a blob (e.g. one fetched from the primary); return its sha256."""
    return app[BLOBS].put_bytes(data)


async def blob_path(app: web.Application, sha256: str) -> Path | None:
    """The file holding blob `sha256`, fetching it through `app[BLOB_FETCHER]` if it is missing; None if absent."""
    store = app[BLOBS]
    try:
        if store.has(sha256):
            return store.path(sha256)
    except ValueError:
        return None
    fetcher = app.get(BLOB_FETCHER)
    if fetcher is None:
        return None
    data = await fetcher(sha256)
    if data is None or hashlib.sha256(data).hexdigest() != sha256:
        return None
    store.put_bytes(data)
    return store.path(sha256)
