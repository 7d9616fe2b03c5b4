"""Storage at /storage/v1 over raw HTTP: exact shapes, statuses and error bodies (docs/protocols.md §5)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from harness.refstack.region.state import DB
from tests.refstack.region.conftest import SERVICE_HEADERS as SERVICE
from tests.refstack.region.conftest import MakeConversation, MakeUser, anon_headers, user_headers


def _url(srv: BackgroundServer, path: str) -> str:
    return f"{srv.url}/storage/v1/{path.lstrip('/')}"


def _upload(
    srv: BackgroundServer,
    headers: dict[str, str],
    key: str,
    data: bytes,
    content_type: str = "text/plain",
    *,
    bucket: str = "attachments",
    upsert: bool = False,
    method: str = "POST",
) -> httpx.Response:
    """Upload the way storage3 does: multipart with cacheControl and a `file` part carrying the content type."""
    return httpx.request(
        method,
        _url(srv, f"object/{bucket}/{key}"),
        headers={**headers, "x-upsert": "true" if upsert else "false"},
        data={"cacheControl": "3600"},
        files={"file": (key.rsplit("/", 1)[-1], data, content_type)},
        timeout=30,
    )


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"statusCode", "code", "error", "message"}, body
    assert isinstance(body["statusCode"], str)
    return dict(body)


def _sql(srv: BackgroundServer, query: str, *args: Any) -> list[Any]:
    """`query` on the region's own PostgreSQL, as its superuser (to see what the database holds)."""
    app = srv.app
    assert app is not None

    async def fetch() -> list[Any]:
        return list(await app[DB].admin.fetch(query, *args))

    return srv.call(fetch)


def _bodies(srv: BackgroundServer, sha256: str | None = None) -> int:
    """How many object bodies the database holds (with this sha256, when given)."""
    rows = _sql(
        srv, "select count(*) from harness_internal.object_bodies where $1::text is null or sha256 = $1", sha256
    )
    return int(rows[0][0])


def _make_bucket(srv: BackgroundServer, name: str, **options: Any) -> None:
    created = httpx.post(_url(srv, "bucket"), headers=SERVICE, json={"id": name, "name": name, **options})
    assert created.status_code == 200 and created.json() == {"name": name}, created.text


@pytest.fixture
def chat(region: BackgroundServer, make_user: MakeUser, make_conversation: MakeConversation) -> dict[str, Any]:
    """Alice and Bob share a conversation; Eve is in none of it."""
    _alice, alice_token, _ = make_user()
    bob, bob_token, _ = make_user()
    _eve, eve_token, _ = make_user()
    conversation = make_conversation(alice_token, [bob])
    return {
        "alice": user_headers(alice_token),
        "bob": user_headers(bob_token),
        "eve": user_headers(eve_token),
        "conv": conversation,
    }


# -- buckets ----------------------------------------------------------------------------------------------------
def test_attachments_bucket_exists_private_by_default(region: BackgroundServer, chat: dict[str, Any]) -> None:
    # A user lists no buckets: storage.buckets has row-level security and the migration adds no policy on it.
    by_user = httpx.get(_url(region, "bucket"), headers=chat["alice"])
    assert by_user.status_code == 200 and by_user.json() == []
    listed = httpx.get(_url(region, "bucket"), headers=SERVICE)
    assert listed.status_code == 200
    bucket = next(b for b in listed.json() if b["id"] == "attachments")
    assert bucket["public"] is False and bucket["owner"] == "" and bucket["name"] == "attachments"
    one = httpx.get(_url(region, "bucket/attachments"), headers=SERVICE)
    assert one.status_code == 200 and one.json()["id"] == "attachments"
    missing = httpx.get(_url(region, "bucket/nope"), headers=SERVICE)
    assert missing.status_code == 400
    assert _error(missing) == {
        "statusCode": "404",
        "code": "NoSuchBucket",
        "error": "Bucket not found",
        "message": "Bucket not found",
    }


def test_bucket_admin_needs_service_role(region: BackgroundServer, chat: dict[str, Any]) -> None:
    refused = httpx.post(_url(region, "bucket"), headers=chat["alice"], json={"id": "mine", "name": "mine"})
    assert refused.status_code == 403
    assert _error(refused)["code"] == "AccessDenied"
    for method, path in (("PUT", "bucket/attachments"), ("POST", "bucket/attachments/empty")):
        assert httpx.request(method, _url(region, path), headers=chat["alice"], json={}).status_code == 403
    assert httpx.delete(_url(region, "bucket/attachments"), headers=chat["alice"]).status_code == 403


def test_bucket_lifecycle(region: BackgroundServer) -> None:
    _make_bucket(region, "avatars", public=True, file_size_limit="1KB", allowed_mime_types=["image/*"])
    duplicate = httpx.post(_url(region, "bucket"), headers=SERVICE, json={"id": "avatars", "name": "avatars"})
    assert duplicate.status_code == 400
    assert _error(duplicate)["statusCode"] == "409" and _error(duplicate)["error"] == "Duplicate"
    bucket = httpx.get(_url(region, "bucket/avatars"), headers=SERVICE).json()
    assert (bucket["public"], bucket["file_size_limit"], bucket["allowed_mime_types"]) == (True, 1024, ["image/*"])

    updated = httpx.put(_url(region, "bucket/avatars"), headers=SERVICE, json={"id": "avatars", "public": False})
    assert updated.status_code == 200 and updated.json() == {"message": "Successfully updated"}
    assert httpx.get(_url(region, "bucket/avatars"), headers=SERVICE).json()["public"] is False

    assert _upload(region, SERVICE, "a.png", b"x", "image/png", bucket="avatars").status_code == 200
    not_empty = httpx.delete(_url(region, "bucket/avatars"), headers=SERVICE)
    assert not_empty.status_code == 400 and _error(not_empty)["code"] == "ResourceNotEmpty"
    emptied = httpx.post(_url(region, "bucket/avatars/empty"), headers=SERVICE, json={})
    assert emptied.json() == {"message": "Successfully emptied"}
    deleted = httpx.delete(_url(region, "bucket/avatars"), headers=SERVICE)
    assert deleted.status_code == 200 and deleted.json() == {"message": "Successfully deleted"}
    assert httpx.get(_url(region, "bucket/avatars"), headers=SERVICE).status_code == 400


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"id": "bad/name", "name": "bad/name"}, "Bucket name invalid"),
        ({"id": "b", "name": "b", "file_size_limit": "lots"}, "use a number of bytes"),
        ({"id": "b", "name": "b", "public": "yes"}, "not a boolean"),
        ({"id": "b", "name": "b", "allowed_mime_types": "image/png"}, "not a list of strings"),
    ],
)
def test_bucket_create_rejects_bad_settings(region: BackgroundServer, body: dict[str, Any], fragment: str) -> None:
    response = httpx.post(_url(region, "bucket"), headers=SERVICE, json=body)
    assert response.status_code == 400 and fragment in _error(response)["message"]


# -- upload and download --------------------------------------------------------------------------------------
def test_multipart_upload_then_download(region: BackgroundServer, chat: dict[str, Any]) -> None:
    key = f"{chat['conv']}/photo.jpg"
    uploaded = _upload(region, chat["alice"], key, b"\xff\xd8jpeg-bytes", "image/jpeg")
    assert uploaded.status_code == 200
    body = uploaded.json()
    assert set(body) == {"Id", "Key"} and body["Key"] == f"attachments/{key}"

    for route in (f"object/attachments/{key}", f"object/authenticated/attachments/{key}"):
        got = httpx.get(_url(region, route), headers=chat["bob"])
        assert got.status_code == 200 and got.content == b"\xff\xd8jpeg-bytes"
        assert got.headers["content-type"] == "image/jpeg"
        assert got.headers["cache-control"] == "max-age=3600"
        assert got.headers["content-length"] == "12" and got.headers["etag"]


def test_raw_body_upload_keeps_content_type(region: BackgroundServer, chat: dict[str, Any]) -> None:
    key = f"{chat['conv']}/note.json"
    uploaded = httpx.post(
        _url(region, f"object/attachments/{key}"),
        headers={**chat["alice"], "Content-Type": "application/json", "cache-control": "max-age=60"},
        content=b'{"a": 1}',
    )
    assert uploaded.status_code == 200 and uploaded.json()["Key"] == f"attachments/{key}"
    got = httpx.get(_url(region, f"object/attachments/{key}"), headers=chat["alice"])
    assert got.content == b'{"a": 1}' and got.headers["content-type"] == "application/json"
    assert got.headers["cache-control"] == "max-age=60"


def test_duplicate_upload_is_409_unless_upsert(region: BackgroundServer, chat: dict[str, Any]) -> None:
    key = f"{chat['conv']}/doc.txt"
    first = _upload(region, chat["alice"], key, b"one")
    assert first.status_code == 200
    duplicate = _upload(region, chat["alice"], key, b"two")
    assert duplicate.status_code == 400
    assert _error(duplicate) == {
        "statusCode": "409",
        "code": "KeyAlreadyExists",
        "error": "Duplicate",
        "message": "The resource already exists",
    }
    # Upsert is insert ... on conflict do update: it needs an UPDATE policy, and the migration has none for users.
    for method in ("POST", "PUT"):
        refused = _upload(region, chat["alice"], key, b"mine again", upsert=True, method=method)
        assert refused.status_code == 400 and _error(refused)["statusCode"] == "403"
        assert _error(refused)["message"] == "new row violates row-level security policy"
    upserted = _upload(region, SERVICE, key, b"three", upsert=True)
    assert upserted.status_code == 200 and upserted.json()["Id"] == first.json()["Id"]
    assert httpx.get(_url(region, f"object/attachments/{key}"), headers=chat["alice"]).content == b"three"
    put = _upload(region, SERVICE, key, b"four", method="PUT")
    assert put.status_code == 200
    assert httpx.get(_url(region, f"object/attachments/{key}"), headers=chat["alice"]).content == b"four"


def test_overwrite_by_a_member_who_is_not_the_owner_is_refused(region: BackgroundServer, chat: dict[str, Any]) -> None:
    key = f"{chat['conv']}/mine.txt"
    assert _upload(region, chat["alice"], key, b"alice's").status_code == 200
    refused = _upload(region, chat["bob"], key, b"bob's", upsert=True)
    assert refused.status_code == 400 and _error(refused)["statusCode"] == "403"
    assert httpx.get(_url(region, f"object/attachments/{key}"), headers=chat["alice"]).content == b"alice's"


def test_bucket_size_limit_and_mime_types(region: BackgroundServer) -> None:
    _make_bucket(region, "small", file_size_limit=1000, allowed_mime_types=["image/*", "application/pdf"])
    too_large = _upload(region, SERVICE, "big.png", b"x" * 2000, "image/png", bucket="small")
    assert too_large.status_code == 400
    error = _error(too_large)
    assert (error["statusCode"], error["code"], error["error"]) == ("413", "EntityTooLarge", "Payload too large")
    raw = httpx.post(
        _url(region, "object/small/raw.png"), headers={**SERVICE, "Content-Type": "image/png"}, content=b"x" * 1001
    )
    assert raw.status_code == 400 and _error(raw)["statusCode"] == "413"
    assert _upload(region, SERVICE, "ok.png", b"x" * 1000, "image/png", bucket="small").status_code == 200
    assert _upload(region, SERVICE, "ok.pdf", b"%PDF", "application/pdf", bucket="small").status_code == 200
    wrong_type = _upload(region, SERVICE, "a.txt", b"text", "text/plain", bucket="small")
    assert wrong_type.status_code == 400
    assert _error(wrong_type)["statusCode"] == "415" and "text/plain" in _error(wrong_type)["message"]
    # Nothing of the refused uploads was kept: only the two accepted bodies are in the database.
    assert _bodies(region) == 2


def test_global_size_limit_streams_and_refuses() -> None:
    with background(lambda: build_app(RegionConfig(storage_file_size_limit_bytes=64 * 1024))) as srv:
        chunks = iter([b"y" * 16 * 1024] * 8)  # chunked transfer: no Content-Length to reject up front
        refused = httpx.post(
            _url(srv, "object/attachments/c/big.bin"),
            headers={**SERVICE, "Content-Type": "application/octet-stream"},
            content=chunks,
        )
        assert refused.status_code == 400 and _error(refused)["statusCode"] == "413"
        assert _upload(srv, SERVICE, "c/fits.bin", b"z" * 64 * 1024).status_code == 200


def test_ten_megabyte_streamed_round_trip_is_byte_exact(region: BackgroundServer, chat: dict[str, Any]) -> None:
    size_bytes = 10 * 1024 * 1024
    block = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB of non-repeating-per-byte data
    sent = hashlib.sha256()

    def body() -> Iterator[bytes]:
        for i in range(size_bytes // len(block)):
            chunk = bytes([i % 256]) + block[1:]
            sent.update(chunk)
            yield chunk

    key = f"{chat['conv']}/video.bin"
    uploaded = httpx.post(
        _url(region, f"object/attachments/{key}"),
        headers={**chat["alice"], "Content-Type": "video/mp4"},
        content=body(),
        timeout=60,
    )
    assert uploaded.status_code == 200, uploaded.text
    received = hashlib.sha256()
    total = 0
    with httpx.stream("GET", _url(region, f"object/attachments/{key}"), headers=chat["bob"], timeout=60) as got:
        assert got.status_code == 200 and got.headers["content-length"] == str(size_bytes)
        for chunk in got.iter_bytes():
            received.update(chunk)
            total += len(chunk)
    assert total == size_bytes and received.hexdigest() == sent.hexdigest()
    # Stored content-addressed under its sha256.
    stored = _sql(
        region, "select length(content) from harness_internal.object_bodies where sha256 = $1", sent.hexdigest()
    )
    assert [r[0] for r in stored] == [size_bytes]


def test_missing_object_is_no_such_key(region: BackgroundServer, chat: dict[str, Any]) -> None:
    missing = httpx.get(_url(region, f"object/attachments/{chat['conv']}/none.txt"), headers=chat["alice"])
    assert missing.status_code == 400
    assert _error(missing) == {
        "statusCode": "404",
        "code": "NoSuchKey",
        "error": "not_found",
        "message": "Object not found",
    }


def test_public_download_only_from_public_buckets(region: BackgroundServer, chat: dict[str, Any]) -> None:
    _make_bucket(region, "public-assets", public=True)
    assert _upload(region, SERVICE, "logo.svg", b"<svg/>", "image/svg+xml", bucket="public-assets").status_code == 200
    public = httpx.get(_url(region, "object/public/public-assets/logo.svg"))
    assert public.status_code == 200 and public.content == b"<svg/>"
    assert public.headers["content-type"] == "image/svg+xml"
    download = httpx.get(_url(region, "object/public/public-assets/logo.svg?download=my logo.svg"))
    assert download.headers["content-disposition"].startswith("attachment; filename=my%20logo.svg")

    key = f"{chat['conv']}/secret.txt"
    assert _upload(region, chat["alice"], key, b"secret").status_code == 200
    private = httpx.get(_url(region, f"object/public/attachments/{key}"))
    assert private.status_code == 400 and _error(private)["code"] == "NoSuchBucket"


# -- access rules ---------------------------------------------------------------------------------------------
def test_non_member_cannot_upload_read_list_or_sign(region: BackgroundServer, chat: dict[str, Any]) -> None:
    key = f"{chat['conv']}/private.txt"
    assert _upload(region, chat["alice"], key, b"members only").status_code == 200
    upload = _upload(region, chat["eve"], f"{chat['conv']}/intruder.txt", b"x")
    assert upload.status_code == 400
    assert _error(upload) == {
        "statusCode": "403",
        "code": "AccessDenied",
        "error": "Unauthorized",
        "message": "new row violates row-level security policy",
    }
    read = httpx.get(_url(region, f"object/attachments/{key}"), headers=chat["eve"])
    assert read.status_code == 400 and _error(read)["code"] == "NoSuchKey"
    listed = httpx.post(_url(region, "object/list/attachments"), headers=chat["eve"], json={"prefix": chat["conv"]})
    assert listed.status_code == 200 and listed.json() == []
    sign = httpx.post(_url(region, f"object/sign/attachments/{key}"), headers=chat["eve"], json={"expiresIn": 60})
    assert sign.status_code == 400 and _error(sign)["code"] == "NoSuchKey"
    # Uploading outside any conversation folder is refused too.
    assert _upload(region, chat["alice"], "not-a-conversation/x.txt", b"x").status_code == 400


def test_anon_and_bad_tokens_are_refused(region: BackgroundServer, chat: dict[str, Any]) -> None:
    key = f"{chat['conv']}/a.txt"
    assert _upload(region, chat["alice"], key, b"hi").status_code == 200
    anon_upload = _upload(region, anon_headers(), f"{chat['conv']}/b.txt", b"x")
    assert anon_upload.status_code == 400 and _error(anon_upload)["statusCode"] == "403"
    anon_read = httpx.get(_url(region, f"object/attachments/{key}"), headers=anon_headers())
    assert anon_read.status_code == 400 and _error(anon_read)["code"] == "NoSuchKey"

    expired = keys.sign({"sub": "x", "role": "authenticated", "exp": int(time.time()) - 10})
    forged = keys.sign({"sub": "x", "role": "service_role"}, secret="not-the-project-secret-at-all-0123456789")
    for headers in ({"Authorization": f"Bearer {expired}"}, {"Authorization": f"Bearer {forged}"}, {}):
        response = httpx.get(_url(region, f"object/attachments/{key}"), headers=headers)
        assert response.status_code == 400
        error = _error(response)
        assert (error["statusCode"], error["code"], error["error"]) == ("403", "AccessDenied", "Unauthorized")
    assert (
        "expired"
        in _error(httpx.get(_url(region, "bucket"), headers={"Authorization": f"Bearer {expired}"}))["message"]
    )


# -- signed URLs ----------------------------------------------------------------------------------------------
def test_signed_url_valid_expired_and_tampered(region: BackgroundServer, chat: dict[str, Any]) -> None:
    key = f"{chat['conv']}/signed file.txt"
    assert _upload(region, chat["alice"], key, b"via signed url").status_code == 200
    for expires_in in ("60", 60):
        signed = httpx.post(
            _url(region, f"object/sign/attachments/{key}"), headers=chat["bob"], json={"expiresIn": expires_in}
        )
        assert signed.status_code == 200
        url = signed.json()["signedURL"]
        assert url.startswith(f"/object/sign/attachments/{chat['conv']}/signed%20file.txt?token=")
        fetched = httpx.get(_url(region, url))  # no Authorization: the token is the credential
        assert fetched.status_code == 200 and fetched.content == b"via signed url"

    token = url.split("token=", 1)[1]
    other = httpx.get(_url(region, f"object/sign/attachments/{chat['conv']}/other.txt?token={token}"))
    assert other.status_code == 400 and _error(other)["code"] == "InvalidSignature"
    tampered = httpx.get(_url(region, url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")))
    assert tampered.status_code == 400 and _error(tampered)["code"] == "InvalidJWT"
    stale = keys.sign({"url": f"attachments/{key}", "iat": 1, "exp": int(time.time()) - 5})
    expired = httpx.get(_url(region, f"object/sign/attachments/{key}"), params={"token": stale})
    assert expired.status_code == 400 and _error(expired)["message"] == "jwt expired"
    bad_expiry = httpx.post(
        _url(region, f"object/sign/attachments/{key}"), headers=chat["bob"], json={"expiresIn": "soon"}
    )
    assert bad_expiry.status_code == 400 and "expiresIn" in _error(bad_expiry)["message"]


def test_batch_sign_reports_each_path(region: BackgroundServer, chat: dict[str, Any]) -> None:
    key = f"{chat['conv']}/one.txt"
    assert _upload(region, chat["alice"], key, b"1").status_code == 200
    signed = httpx.post(
        _url(region, "object/sign/attachments"),
        headers=chat["alice"],
        json={"expiresIn": "60", "paths": [key, f"{chat['conv']}/missing.txt"]},
    )
    assert signed.status_code == 200
    first, second = signed.json()
    assert first["error"] is None and first["path"] == key and first["signedURL"].startswith("/object/sign/")
    assert second["signedURL"] is None and second["error"]
    assert httpx.get(_url(region, first["signedURL"])).content == b"1"


# -- list, delete, move, copy, info ---------------------------------------------------------------------------
def test_list_shows_one_level_with_folders(region: BackgroundServer, chat: dict[str, Any]) -> None:
    conv = chat["conv"]
    for name in ("b.txt", "a.txt", "sub/c.txt", "sub/deeper/d.txt", "Apple.txt"):
        assert _upload(region, chat["alice"], f"{conv}/{name}", name.encode()).status_code == 200

    def names(body: dict[str, Any]) -> list[str]:
        listed = httpx.post(_url(region, "object/list/attachments"), headers=chat["bob"], json=body)
        assert listed.status_code == 200, listed.text
        return [entry["name"] for entry in listed.json()]

    listed = httpx.post(
        _url(region, "object/list/attachments"),
        headers=chat["bob"],
        json={"prefix": conv, "limit": 100, "offset": 0, "sortBy": {"column": "name", "order": "asc"}},
    ).json()
    assert [e["name"] for e in listed] == ["Apple.txt", "a.txt", "b.txt", "sub"]
    folder = listed[-1]
    assert folder == {**folder, "id": None, "metadata": None, "created_at": None}
    file = listed[1]
    assert file["id"] and file["metadata"]["size"] == 5 and file["metadata"]["mimetype"] == "text/plain"
    assert names({"prefix": f"{conv}/sub/"}) == ["c.txt", "deeper"]
    assert names({"prefix": conv, "search": "a"}) == ["Apple.txt", "a.txt"]
    assert names({"prefix": conv, "limit": 2, "offset": 1}) == ["a.txt", "b.txt"]
    assert names({"prefix": conv, "sortBy": {"column": "name", "order": "desc"}}) == [
        "sub",
        "b.txt",
        "a.txt",
        "Apple.txt",
    ]
    # At the bucket root a member sees their conversation's folder only.
    assert names({"prefix": ""}) == [conv]
    bad = httpx.post(_url(region, "object/list/attachments"), headers=chat["bob"], json={"prefix": conv, "limit": 0})
    assert bad.status_code == 400 and "limit" in _error(bad)["message"]


def test_delete_only_by_owner_returns_deleted_objects(region: BackgroundServer, chat: dict[str, Any]) -> None:
    conv = chat["conv"]
    for name in ("x.txt", "y.txt"):
        assert _upload(region, chat["alice"], f"{conv}/{name}", b"data").status_code == 200
    paths = [f"{conv}/x.txt", f"{conv}/y.txt", f"{conv}/never.txt"]
    by_member = httpx.request(
        "DELETE", _url(region, "object/attachments"), headers=chat["bob"], json={"prefixes": paths}
    )
    assert by_member.status_code == 200 and by_member.json() == []
    by_owner = httpx.request(
        "DELETE", _url(region, "object/attachments"), headers=chat["alice"], json={"prefixes": paths}
    )
    assert by_owner.status_code == 200
    assert sorted(o["name"] for o in by_owner.json()) == paths[:2]
    assert all(o["bucket_id"] == "attachments" and o["id"] for o in by_owner.json())
    gone = httpx.get(_url(region, f"object/attachments/{conv}/x.txt"), headers=chat["alice"])
    assert _error(gone)["code"] == "NoSuchKey"
    # Both rows pointed at the same content; with them gone the body is removed as well.
    assert _bodies(region, hashlib.sha256(b"data").hexdigest()) == 0
    empty = httpx.request("DELETE", _url(region, "object/attachments"), headers=chat["alice"], json={"prefixes": []})
    assert empty.status_code == 400 and "prefixes" in _error(empty)["message"]


def test_move_copy_and_info(region: BackgroundServer, chat: dict[str, Any]) -> None:
    conv = chat["conv"]
    assert _upload(region, chat["alice"], f"{conv}/orig.txt", b"content", "text/markdown").status_code == 200
    copied = httpx.post(
        _url(region, "object/copy"),
        headers=chat["bob"],
        json={"bucketId": "attachments", "sourceKey": f"{conv}/orig.txt", "destinationKey": f"{conv}/copy.txt"},
    )
    assert copied.status_code == 200 and copied.json()["Key"] == f"attachments/{conv}/copy.txt"
    moved = httpx.post(
        _url(region, "object/move"),
        headers=chat["alice"],
        json={"bucketId": "attachments", "sourceKey": f"{conv}/orig.txt", "destinationKey": f"{conv}/moved.txt"},
    )
    assert moved.status_code == 200 and moved.json()["message"] == "Successfully moved"
    assert moved.json()["Key"] == f"{conv}/moved.txt"  # storage-api's move names the key, without the bucket
    for name in ("copy.txt", "moved.txt"):
        assert httpx.get(_url(region, f"object/attachments/{conv}/{name}"), headers=chat["alice"]).content == b"content"
    info = httpx.get(_url(region, f"object/info/attachments/{conv}/moved.txt"), headers=chat["bob"])
    assert info.status_code == 200
    assert info.json()["size"] == 7 and info.json()["content_type"] == "text/markdown"
    assert (
        _error(httpx.get(_url(region, f"object/info/attachments/{conv}/orig.txt"), headers=chat["bob"]))["statusCode"]
        == "404"
    )


def test_bad_object_keys_are_invalid_key(region: BackgroundServer) -> None:
    for key in ("a//b.txt", "a/%2E%2E/b.txt", "a/%01.txt"):
        response = _upload(region, SERVICE, key, b"x")
        assert response.status_code == 400 and _error(response)["code"] in ("InvalidKey", "NoSuchKey"), key


def test_unknown_storage_route_is_storage_shaped_404(region: BackgroundServer) -> None:
    response = httpx.get(_url(region, "nothing/here"), headers=SERVICE)
    assert response.status_code == 404 and _error(response)["statusCode"] == "404"
