"""Storage access is decided by PostgreSQL's row-level security, so a project's own storage policies (from its
migrations) are enforced as written, and refusals have storage-api's shapes.

The region starts with RegionConfig(migrations_dir=...) holding the shipped migrations plus one of the
project's own: a private `avatars` bucket where each user reads, uploads and overwrites only under a folder named
by their user id, and may see that bucket (and only it) in the bucket list. Users are minted tokens (storage
needs only the JWT; no auth.users row is involved).
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.postgres import migrations
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from harness.refstack.region.state import DB

SERVICE = {"Authorization": f"Bearer {keys.SERVICE_ROLE_KEY}"}

AVATARS_MIGRATION = """
insert into storage.buckets (id, name, public) values ('avatars', 'avatars', false);

create policy avatars_read_own on storage.objects for select to authenticated
  using (bucket_id = 'avatars' and (storage.foldername(name))[1] = (select auth.uid())::text);
create policy avatars_upload_own on storage.objects for insert to authenticated
  with check (bucket_id = 'avatars' and (storage.foldername(name))[1] = (select auth.uid())::text);
create policy avatars_overwrite_own on storage.objects for update to authenticated
  using (bucket_id = 'avatars' and owner = (select auth.uid()))
  with check (bucket_id = 'avatars' and (storage.foldername(name))[1] = (select auth.uid())::text);
create policy avatars_bucket_visible on storage.buckets for select to authenticated using (id = 'avatars');
"""

RLS_REFUSAL = {
    "statusCode": "403",
    "code": "AccessDenied",
    "error": "Unauthorized",
    "message": "new row violates row-level security policy",
}
NOT_FOUND = {"statusCode": "404", "code": "NoSuchKey", "error": "not_found", "message": "Object not found"}


@pytest.fixture
def project(tmp_path: Path) -> Iterator[BackgroundServer]:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for shipped in migrations.default_folder().glob("*.sql"):
        shutil.copy(shipped, folder)
    (folder / "20990101000000_avatars.sql").write_text(AVATARS_MIGRATION)
    config = RegionConfig(data_dir=tmp_path / "region", migrations_dir=folder)
    with background(lambda: build_app(config)) as server:
        yield server


def _user() -> tuple[str, dict[str, str]]:
    user_id = str(uuid.uuid4())
    token, _ = keys.mint_access_token(user_id=user_id, email=f"{user_id}@example.com", issuer="test")
    return user_id, {"Authorization": f"Bearer {token}"}


def _url(srv: BackgroundServer, path: str) -> str:
    return f"{srv.url}/storage/v1/{path}"


def _upload(srv: BackgroundServer, headers: dict[str, str], key: str, data: bytes, **extra: str) -> httpx.Response:
    return httpx.post(
        _url(srv, f"object/avatars/{key}"),
        headers={**headers, "Content-Type": "image/png", **extra},
        content=data,
        timeout=10,
    )


def _body(response: httpx.Response) -> dict[str, Any]:
    return cast(dict[str, Any], response.json())


def _sql(srv: BackgroundServer, query: str, *args: Any) -> list[Any]:
    app = srv.app
    assert app is not None

    async def fetch() -> list[Any]:
        return list(await app[DB].admin.fetch(query, *args))

    return cast(list[Any], srv.call(fetch))


def test_a_project_policy_decides_uploads_reads_overwrites_and_lists(project: BackgroundServer) -> None:
    alice, alice_headers = _user()
    bob, bob_headers = _user()

    assert _upload(project, alice_headers, f"{alice}/face.png", b"alice v1").status_code == 200
    into_bobs_folder = _upload(project, alice_headers, f"{bob}/face.png", b"not hers")
    assert into_bobs_folder.status_code == 400 and _body(into_bobs_folder) == RLS_REFUSAL

    # The project's UPDATE policy lets the owner overwrite (upsert is insert ... on conflict do update) ...
    overwritten = _upload(project, alice_headers, f"{alice}/face.png", b"alice v2", **{"x-upsert": "true"})
    assert overwritten.status_code == 200, overwritten.text
    mine = httpx.get(_url(project, f"object/avatars/{alice}/face.png"), headers=alice_headers)
    assert mine.status_code == 200 and mine.content == b"alice v2"
    # ... and the replaced body is gone from the database in the same transaction.
    v1 = hashlib.sha256(b"alice v1").hexdigest()
    assert _sql(project, "select sha256 from harness_internal.object_bodies where sha256 = $1", v1) == []

    # Bob's own policy rows do not reach Alice's folder: her avatar is invisible to him, not forbidden.
    hidden = httpx.get(_url(project, f"object/avatars/{alice}/face.png"), headers=bob_headers)
    assert hidden.status_code == 400 and _body(hidden) == NOT_FOUND
    overwrite_hers = _upload(project, bob_headers, f"{alice}/face.png", b"bob's", **{"x-upsert": "true"})
    assert overwrite_hers.status_code == 400 and _body(overwrite_hers) == RLS_REFUSAL

    listed_by_bob = httpx.post(_url(project, "object/list/avatars"), headers=bob_headers, json={"prefix": ""})
    assert listed_by_bob.status_code == 200 and listed_by_bob.json() == []
    listed_by_alice = httpx.post(_url(project, "object/list/avatars"), headers=alice_headers, json={"prefix": ""})
    assert [e["name"] for e in listed_by_alice.json()] == [alice]

    # No DELETE policy in the project's migration: nothing is deleted, and nothing says it was.
    deleted = httpx.request(
        "DELETE", _url(project, "object/avatars"), headers=alice_headers, json={"prefixes": [f"{alice}/face.png"]}
    )
    assert deleted.status_code == 200 and deleted.json() == []
    assert httpx.get(_url(project, f"object/avatars/{alice}/face.png"), headers=alice_headers).status_code == 200


def test_bucket_visibility_follows_the_project_policy_on_storage_buckets(project: BackgroundServer) -> None:
    alice, alice_headers = _user()
    listed = httpx.get(_url(project, "bucket"), headers=alice_headers)
    assert listed.status_code == 200 and [b["id"] for b in listed.json()] == ["avatars"]
    assert httpx.get(_url(project, "bucket/avatars"), headers=alice_headers).json()["id"] == "avatars"
    hidden = httpx.get(_url(project, "bucket/attachments"), headers=alice_headers)
    assert hidden.status_code == 400 and _body(hidden)["code"] == "NoSuchBucket"
    service_view = httpx.get(_url(project, "bucket"), headers=SERVICE)
    assert sorted(b["id"] for b in service_view.json()) == ["attachments", "avatars"]

    # No INSERT/UPDATE/DELETE policy on storage.buckets: bucket administration stays the service role's.
    created = httpx.post(_url(project, "bucket"), headers=alice_headers, json={"id": "mine", "name": "mine"})
    assert created.status_code == 403 and _body(created) == {**RLS_REFUSAL}
    for method, path in (("PUT", "bucket/avatars"), ("DELETE", "bucket/avatars"), ("DELETE", "bucket/attachments")):
        refused = httpx.request(method, _url(project, path), headers=alice_headers, json={})
        assert refused.status_code == 403 and _body(refused)["code"] == "AccessDenied", (method, path)
    # Emptying a bucket one may see deletes what the DELETE policies allow: here nothing.
    assert _upload(project, alice_headers, f"{alice}/kept.png", b"kept").status_code == 200
    emptied = httpx.post(_url(project, "bucket/avatars/empty"), headers=alice_headers, json={})
    assert emptied.status_code == 200 and emptied.json() == {"message": "Successfully emptied"}
    assert httpx.get(_url(project, f"object/avatars/{alice}/kept.png"), headers=alice_headers).content == b"kept"
    missing = httpx.delete(_url(project, "bucket/nothing-here"), headers=alice_headers)
    assert missing.status_code == 400 and _body(missing)["code"] == "NoSuchBucket"


def test_uploads_the_policies_refuse_leave_nothing_behind(project: BackgroundServer) -> None:
    alice, _alice_headers = _user()
    _bob, bob_headers = _user()
    data = b"refused body " * 1000
    refused = _upload(project, bob_headers, f"{alice}/big.png", data)
    assert refused.status_code == 400 and _body(refused) == RLS_REFUSAL
    anon = _upload(project, {"Authorization": f"Bearer {keys.ANON_KEY}"}, f"{alice}/anon.png", data)
    assert anon.status_code == 400 and _body(anon) == RLS_REFUSAL
    sha = hashlib.sha256(data).hexdigest()
    assert _sql(project, "select 1 from harness_internal.object_bodies where sha256 = $1", sha) == []
    assert _sql(project, "select 1 from storage.objects where bucket_id = 'avatars'") == []
