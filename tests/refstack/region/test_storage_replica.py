"""An object stored on the primary reaches its read replica (a hot standby made by base backup) by PostgreSQL's
streaming replication, row and body together, and is served there under the same policies; writes that reach the
replica are refused in storage-api's error shape, never a 500."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from harness.refstack.region.state import DB
from tests.refstack.region.conftest import wait_until

SERVICE = {"Authorization": f"Bearer {keys.SERVICE_ROLE_KEY}"}
Pair = tuple[BackgroundServer, BackgroundServer]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    with background(lambda: build_app(RegionConfig(data_dir=tmp_path / "primary"))) as primary:
        replica_config = RegionConfig(
            region="ap-northeast-1", role="replica", primary_url=primary.url, data_dir=tmp_path / "replica"
        )
        with background(lambda: build_app(replica_config)) as replica:
            yield primary, replica


def _member_of_a_conversation(primary: BackgroundServer) -> tuple[str, dict[str, str]]:
    """A user (row in auth.users) and a conversation they belong to, written on the primary; their token."""
    app = primary.app
    assert app is not None
    user_id, conversation_id = str(uuid.uuid4()), str(uuid.uuid4())

    async def seed() -> None:
        async with app[DB].as_admin() as conn:
            await conn.execute(
                "insert into auth.users (id, email, aud, role) values ($1, $2, 'authenticated', 'authenticated')",
                uuid.UUID(user_id),
                f"{user_id}@example.com",
            )
            await conn.execute(
                "insert into public.conversations (id, created_by) values ($1, $2)",
                uuid.UUID(conversation_id),
                uuid.UUID(user_id),
            )
            await conn.execute(
                "insert into public.conversation_members (conversation_id, user_id) values ($1, $2)",
                uuid.UUID(conversation_id),
                uuid.UUID(user_id),
            )

    primary.call(seed)
    token, _ = keys.mint_access_token(user_id=user_id, email=f"{user_id}@example.com", issuer="test")
    return conversation_id, {"Authorization": f"Bearer {token}"}


def test_an_object_body_reaches_the_replica_and_is_served_there(pair: Pair) -> None:
    primary, replica = pair
    conversation, member = _member_of_a_conversation(primary)
    body = bytes(range(256)) * 2048  # 512 KiB
    key = f"{conversation}/photo.bin"
    uploaded = httpx.post(
        f"{primary.url}/storage/v1/object/attachments/{key}",
        headers={**member, "Content-Type": "image/png"},
        content=body,
    )
    assert uploaded.status_code == 200, uploaded.text

    def download() -> httpx.Response | None:
        response = httpx.get(f"{replica.url}/storage/v1/object/attachments/{key}", headers=member)
        return response if response.status_code == 200 else None

    got = wait_until(download)
    assert got.content == body and got.headers["content-type"] == "image/png"
    assert got.headers["x-origin-region"] == "ap-northeast-1"

    storage = f"{replica.url}/storage/v1"
    info = httpx.get(f"{storage}/object/info/attachments/{key}", headers=member)
    assert info.status_code == 200 and info.json()["size"] == len(body)
    listed = httpx.post(f"{storage}/object/list/attachments", headers=member, json={"prefix": conversation})
    assert [e["name"] for e in listed.json()] == ["photo.bin"]
    signed = httpx.post(f"{storage}/object/sign/attachments/{key}", headers=member, json={"expiresIn": 60})
    assert signed.status_code == 200, signed.text
    assert httpx.get(storage + signed.json()["signedURL"]).content == body

    # The same policies hold on the replica: another user does not see the object.
    _other_conversation, outsider = _member_of_a_conversation(primary)
    hidden = httpx.get(f"{storage}/object/attachments/{key}", headers=outsider)
    assert hidden.status_code == 400 and hidden.json()["code"] == "NoSuchKey"


def test_writes_reaching_the_replica_get_the_read_only_error(pair: Pair) -> None:
    primary, replica = pair
    assert httpx.post(f"{primary.url}/storage/v1/object/attachments/c/a.txt", headers=SERVICE, content=b"a").is_success
    storage = f"{replica.url}/storage/v1"
    wait_until(lambda: httpx.get(f"{storage}/object/attachments/c/a.txt", headers=SERVICE).status_code == 200)
    attempts = [
        httpx.post(f"{storage}/object/attachments/c/b.txt", headers=SERVICE, content=b"b"),
        httpx.put(f"{storage}/object/attachments/c/a.txt", headers=SERVICE, content=b"a2"),
        httpx.delete(f"{storage}/object/attachments/c/a.txt", headers=SERVICE),
        httpx.request("DELETE", f"{storage}/object/attachments", headers=SERVICE, json={"prefixes": ["c/a.txt"]}),
        httpx.post(
            f"{storage}/object/copy",
            headers=SERVICE,
            json={"bucketId": "attachments", "sourceKey": "c/a.txt", "destinationKey": "c/copy.txt"},
        ),
        httpx.post(f"{storage}/bucket", headers=SERVICE, json={"id": "new", "name": "new"}),
        httpx.post(f"{storage}/bucket/attachments/empty", headers=SERVICE, json={}),
    ]
    for response in attempts:
        assert response.status_code == 400, (response.request.method, response.request.url, response.text)
        assert response.json() == {
            "statusCode": "503",
            "code": "DatabaseReadOnly",
            "error": "DatabaseReadOnly",
            "message": "The database is currently in read-only mode. Please try again later.",
        }
    assert httpx.get(f"{storage}/object/attachments/c/a.txt", headers=SERVICE).content == b"a"
