"""Object bodies in PostgreSQL (harness_internal.object_bodies): content-addressed, shared between objects with the
same bytes, and removed in the same transaction as the last object pointing at them (delete, overwrite, empty),
also when uploads and deletes of the same content race."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from harness.refstack.region.state import DB

SERVICE = {"Authorization": f"Bearer {keys.SERVICE_ROLE_KEY}"}


@pytest.fixture(scope="module")
def srv() -> Iterator[BackgroundServer]:
    with background(lambda: build_app(RegionConfig())) as server:
        yield server


@pytest.fixture
def bucket(srv: BackgroundServer, request: pytest.FixtureRequest) -> str:
    """A fresh bucket per test, so body counts are the test's own."""
    name = request.node.name.replace("_", "-")[:60]
    created = httpx.post(f"{srv.url}/storage/v1/bucket", headers=SERVICE, json={"id": name, "name": name})
    assert created.status_code == 200, created.text
    return name


def _sql(srv: BackgroundServer, query: str, *args: Any) -> list[Any]:
    app = srv.app
    assert app is not None

    async def fetch() -> list[Any]:
        return list(await app[DB].admin.fetch(query, *args))

    return cast(list[Any], srv.call(fetch))


def _has_body(srv: BackgroundServer, data: bytes) -> bool:
    sha = hashlib.sha256(data).hexdigest()
    return bool(_sql(srv, "select 1 from harness_internal.object_bodies where sha256 = $1", sha))


def _orphans(srv: BackgroundServer) -> int:
    rows = _sql(
        srv,
        "select count(*) from harness_internal.object_bodies b"
        " where not exists (select 1 from storage.objects o where o.version = b.sha256)",
    )
    return int(rows[0][0])


def _url(srv: BackgroundServer, path: str) -> str:
    return f"{srv.url}/storage/v1/{path}"


def _put(srv: BackgroundServer, bucket: str, key: str, data: bytes, *, upsert: bool = False) -> None:
    response = httpx.post(
        _url(srv, f"object/{bucket}/{key}"),
        headers={**SERVICE, "Content-Type": "application/octet-stream", "x-upsert": str(upsert).lower()},
        content=data,
    )
    assert response.status_code == 200, response.text


def _get(srv: BackgroundServer, bucket: str, key: str) -> bytes | None:
    response = httpx.get(_url(srv, f"object/{bucket}/{key}"), headers=SERVICE)
    return response.content if response.status_code == 200 else None


def _post(srv: BackgroundServer, path: str, body: dict[str, Any]) -> None:
    response = httpx.post(_url(srv, path), headers=SERVICE, json=body)
    assert response.status_code == 200, response.text


def test_one_body_per_content_kept_while_any_object_points_at_it(srv: BackgroundServer, bucket: str) -> None:
    shared, other = b"shared bytes", b"other bytes"
    _put(srv, bucket, "a.bin", shared)
    _put(srv, bucket, "b.bin", shared)
    _post(srv, "object/copy", {"bucketId": bucket, "sourceKey": "a.bin", "destinationKey": "c.bin"})
    sha = hashlib.sha256(shared).hexdigest()
    assert _sql(srv, "select count(*) from storage.objects where version = $1", sha)[0][0] == 3
    assert _sql(srv, "select count(*) from harness_internal.object_bodies where sha256 = $1", sha)[0][0] == 1

    deleted = httpx.delete(_url(srv, f"object/{bucket}/a.bin"), headers=SERVICE)
    assert deleted.status_code == 200 and _has_body(srv, shared)
    _post(srv, "object/move", {"bucketId": bucket, "sourceKey": "b.bin", "destinationKey": "moved/b.bin"})
    assert _has_body(srv, shared) and _get(srv, bucket, "moved/b.bin") == shared
    _put(srv, bucket, "moved/b.bin", other, upsert=True)  # overwrite: c.bin still points at the old body
    assert _has_body(srv, shared) and _has_body(srv, other)
    _put(srv, bucket, "c.bin", other, upsert=True)  # the last pointer to `shared` moves away
    assert not _has_body(srv, shared) and _get(srv, bucket, "c.bin") == other
    assert _orphans(srv) == 0


def test_deleting_and_emptying_drop_the_bodies(srv: BackgroundServer, bucket: str) -> None:
    contents = [f"object {i}".encode() for i in range(5)]
    for i, data in enumerate(contents):
        _put(srv, bucket, f"f/{i}.txt", data)
    removed = httpx.request(
        "DELETE", _url(srv, f"object/{bucket}"), headers=SERVICE, json={"prefixes": ["f/0.txt", "f/1.txt"]}
    )
    assert sorted(o["name"] for o in removed.json()) == ["f/0.txt", "f/1.txt"]
    assert [_has_body(srv, d) for d in contents] == [False, False, True, True, True]
    _post(srv, f"bucket/{bucket}/empty", {})
    assert not any(_has_body(srv, d) for d in contents)
    deleted = httpx.delete(_url(srv, f"bucket/{bucket}"), headers=SERVICE)
    assert deleted.status_code == 200, deleted.text
    assert _orphans(srv) == 0


def test_racing_uploads_and_deletes_of_the_same_content_never_lose_a_body(srv: BackgroundServer, bucket: str) -> None:
    """Each round uploads a new object with content X while deleting the previous one (its only other pointer):
    whichever commits first, the body survives exactly as long as an object points at it."""
    data = b"raced content " * 512
    rounds = 40

    async def race() -> list[int]:
        statuses: list[int] = []
        headers = {**SERVICE, "Content-Type": "application/octet-stream"}
        async with httpx.AsyncClient(base_url=_url(srv, ""), headers=headers, timeout=30) as client:
            first = await client.post(f"object/{bucket}/r0.bin", content=data)
            statuses.append(first.status_code)
            for i in range(1, rounds):
                upload, delete = await asyncio.gather(
                    client.post(f"object/{bucket}/r{i}.bin", content=data),
                    client.delete(f"object/{bucket}/r{i - 1}.bin"),
                )
                statuses += [upload.status_code, delete.status_code]
        return statuses

    assert set(asyncio.run(race())) == {200}
    assert _get(srv, bucket, f"r{rounds - 1}.bin") == data
    assert _has_body(srv, data) and _orphans(srv) == 0
    _post(srv, f"bucket/{bucket}/empty", {})
    assert not _has_body(srv, data)
