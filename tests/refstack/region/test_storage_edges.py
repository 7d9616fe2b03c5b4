"""Storage endpoints beyond the app's own use (issue 16 item 2), through storage3 (supabase-py) where it has a
method, raw HTTP for exact statuses and bodies: signed upload URLs, list-v2, copy/move across buckets, info and
HEAD, bucket type and size limits, image transformation refused, unknown routes. One server for the module."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from storage3.exceptions import StorageApiError
from storage3.types import CreateSignedUploadUrlOptions, SearchV2Options

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from tests.refstack.region.conftest import SERVICE_HEADERS as SERVICE
from tests.refstack.region.conftest import TEST_BCRYPT_COST, create_user, user_headers

GLOBAL_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    data_dir: Path = tmp_path_factory.mktemp("storage-edges")
    config = RegionConfig(data_dir=data_dir, bcrypt_cost=TEST_BCRYPT_COST, storage_file_size_limit_bytes=GLOBAL_LIMIT)
    with background(lambda: build_app(config)) as server:
        buckets: dict[str, dict[str, Any]] = {
            "docs": {},
            "archive": {},
            "open": {"public": True},
            "pics": {"allowed_mime_types": ["image/png", "video/*"], "file_size_limit": 10},
            "listing": {},
        }
        for name, options in buckets.items():
            made = httpx.post(_url(server, "bucket"), headers=SERVICE, json={"id": name, "name": name, **options})
            assert made.status_code == 200, made.text
        yield server


def _url(srv: BackgroundServer, path: str) -> str:
    return f"{srv.url}/storage/v1/{path.lstrip('/')}"


def _put(srv: BackgroundServer, bucket: str, key: str, data: bytes, content_type: str = "text/plain") -> None:
    done = httpx.post(
        _url(srv, f"object/{bucket}/{key}"), headers={**SERVICE, "Content-Type": content_type}, content=data
    )
    assert done.status_code == 200, done.text


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"statusCode", "code", "error", "message"}, body
    return dict(body)


async def _admin(srv: BackgroundServer) -> AsyncClient:
    options = AsyncClientOptions(auto_refresh_token=False, persist_session=False)
    return await acreate_client(srv.url, keys.SERVICE_ROLE_KEY, options=options)


def test_signed_upload_url_through_storage3(srv: BackgroundServer) -> None:
    async def scenario() -> None:
        files = (await _admin(srv)).storage.from_("docs")
        signed = await files.create_signed_upload_url("up/report.txt")
        assert signed["signed_url"].startswith(f"{srv.url}/storage/v1/object/upload/sign/docs/up/report.txt?token=")
        done = await files.upload_to_signed_url("up/report.txt", signed["token"], b"first", {"content-type": "text/x"})
        assert done.full_path == "docs/up/report.txt"
        assert await files.download("up/report.txt") == b"first"
        # The token did not ask for upsert: the object now exists, so a second upload is a duplicate.
        with pytest.raises(StorageApiError) as duplicate:
            await files.upload_to_signed_url("up/report.txt", signed["token"], b"second")
        assert (str(duplicate.value.status), duplicate.value.code) == ("409", "Duplicate")
        replacing = await files.create_signed_upload_url("up/report.txt", CreateSignedUploadUrlOptions(upsert="true"))
        await files.upload_to_signed_url("up/report.txt", replacing["token"], b"second")
        assert await files.download("up/report.txt") == b"second"
        info = await files.info("up/report.txt")
        assert (info["size"], info["content_type"], info["metadata"]) == (6, "text/plain;charset=UTF-8", None)

    asyncio.run(scenario())


def test_signed_upload_tokens_are_bound_to_path_and_scope(srv: BackgroundServer) -> None:
    minted = httpx.post(_url(srv, "object/upload/sign/docs/bound.txt"), headers=SERVICE)
    assert minted.status_code == 200 and set(minted.json()) == {"url", "token"}
    token = minted.json()["token"]
    assert minted.json()["url"] == f"/object/upload/sign/docs/bound.txt?token={token}"
    elsewhere = httpx.put(_url(srv, f"object/upload/sign/docs/other.txt?token={token}"), content=b"x")
    assert elsewhere.status_code == 400 and _error(elsewhere)["code"] == "InvalidSignature"
    # An upload token cannot read, and a download token cannot write.
    reading = httpx.get(_url(srv, f"object/sign/docs/bound.txt?token={token}"))
    assert _error(reading)["message"] == "Token is not scoped for download"
    _put(srv, "docs", "readable.txt", b"r")
    sign = httpx.post(_url(srv, "object/sign/docs/readable.txt"), headers=SERVICE, json={"expiresIn": 60})
    download_token = sign.json()["signedURL"].split("token=")[1]
    writing = httpx.put(_url(srv, f"object/upload/sign/docs/readable.txt?token={download_token}"), content=b"w")
    assert writing.status_code == 400 and _error(writing) == {
        "statusCode": "400",
        "code": "InvalidSignature",
        "error": "InvalidSignature",
        "message": "Token is not scoped for upload",
    }
    missing = httpx.put(_url(srv, "object/upload/sign/docs/bound.txt"), content=b"x")
    assert _error(missing)["code"] == "MissingParameter"


def test_signing_an_upload_checks_the_callers_policies(srv: BackgroundServer) -> None:
    """A user with no INSERT policy on the bucket gets no upload URL (storage-api's canUpload, rolled back)."""
    _user, token, _ = create_user(srv.url)
    refused = httpx.post(_url(srv, "object/upload/sign/docs/mine.txt"), headers=user_headers(token))
    assert refused.status_code == 400
    assert _error(refused)["statusCode"] == "403" and "row-level security" in _error(refused)["message"]
    _put(srv, "docs", "taken.txt", b"t")
    taken = httpx.post(_url(srv, "object/upload/sign/docs/taken.txt"), headers=SERVICE)
    assert _error(taken)["statusCode"] == "409"
    # The trial write left nothing behind.
    assert httpx.get(_url(srv, "object/info/docs/mine.txt"), headers=SERVICE).status_code == 400
    nowhere = httpx.post(_url(srv, "object/upload/sign/nobucket/x.txt"), headers=SERVICE)
    assert _error(nowhere)["message"] == "Bucket not found"


def _walk(srv: BackgroundServer, options: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of a list-v2 listing through storage3, followed by its cursor."""

    async def scenario() -> list[dict[str, Any]]:
        files = (await _admin(srv)).storage.from_("listing")
        pages: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(20):
            wanted = cast(SearchV2Options, {**options, **({"cursor": cursor} if cursor else {})})
            page = await files.list_v2(wanted)
            pages.append(page.model_dump())
            if not page.hasNext:
                return pages
            cursor = page.nextCursor
        raise AssertionError("list-v2 did not end within 20 pages")

    return asyncio.run(scenario())


def test_list_v2_pages_with_and_without_delimiter(srv: BackgroundServer) -> None:
    for name in ("a.txt", "a/1.txt", "a/2.txt", "a/b/3.txt", "b/4.txt", "c.txt", "cz/5.txt"):
        _put(srv, "listing", name, name.encode())
    pages = _walk(srv, {"with_delimiter": True, "limit": 2})
    names = [[e["name"] for e in p["folders"] + p["objects"]] for p in pages]
    # Entries sort as their names (a folder as its prefix): "a.txt" < "a/" < "b/" < "c.txt" < "cz/".
    assert [p["hasNext"] for p in pages] == [True, True, False]
    assert sorted(n for page_names in names for n in page_names) == ["a.txt", "a/", "b/", "c.txt", "cz/"]
    assert names[0] == ["a/", "a.txt"]  # folders then objects within a page
    folder = pages[0]["folders"][0]
    assert (folder["key"], folder["name"]) == ("a", "a/")
    inside = _walk(srv, {"with_delimiter": True, "prefix": "a/"})
    assert [f["name"] for f in inside[0]["folders"]] == ["a/b/"]
    assert [(o["key"], o["name"]) for o in inside[0]["objects"]] == [("1.txt", "a/1.txt"), ("2.txt", "a/2.txt")]
    flat = _walk(srv, {"prefix": "a", "limit": 3})
    assert [o["name"] for p in flat for o in p["objects"]] == ["a.txt", "a/1.txt", "a/2.txt", "a/b/3.txt"]
    assert all(not p["folders"] for p in flat)
    newest = _walk(srv, {"sortBy": {"column": "created_at", "order": "desc"}, "limit": 4})
    assert [o["name"] for p in newest for o in p["objects"]][:2] == ["cz/5.txt", "c.txt"]


def test_list_v2_raw_shape_and_errors(srv: BackgroundServer) -> None:
    _put(srv, "listing", "raw/x.txt", b"x")
    _put(srv, "listing", "raw/y.txt", b"y")
    page = httpx.post(_url(srv, "object/list-v2/listing"), headers=SERVICE, json={"prefix": "raw/", "limit": 1})
    assert page.status_code == 200
    body = page.json()
    assert set(body) == {"hasNext", "nextCursor", "nextCursorKey", "folders", "objects"}
    assert set(body["objects"][0]) == {"id", "name", "metadata", "updated_at", "created_at", "last_accessed_at"}
    assert base64.b64decode(body["nextCursor"]).decode() == "l:raw/x.txt\no:asc\nc:name"
    last = httpx.post(_url(srv, "object/list-v2/listing"), headers=SERVICE, json={"prefix": "raw/", "limit": 5})
    assert set(last.json()) == {"hasNext", "folders", "objects"} and last.json()["hasNext"] is False
    bad_cursor = httpx.post(_url(srv, "object/list-v2/listing"), headers=SERVICE, json={"cursor": "bm9wZQ=="})
    assert _error(bad_cursor)["message"] == "Invalid Parameter continuation token"
    bad_limit = httpx.post(_url(srv, "object/list-v2/listing"), headers=SERVICE, json={"limit": 0})
    assert bad_limit.status_code == 400 and _error(bad_limit)["message"] == "body/limit must be >= 1"
    nowhere = httpx.post(_url(srv, "object/list-v2/none"), headers=SERVICE, json={})
    assert _error(nowhere)["code"] == "NoSuchBucket"


ACROSS = {"bucketId": "docs", "sourceKey": "cm/source.txt", "destinationBucket": "archive"}


def test_copy_and_move_across_buckets(srv: BackgroundServer) -> None:
    _put(srv, "docs", "cm/source.txt", b"payload")
    copied = httpx.post(
        _url(srv, "object/copy"),
        headers=SERVICE,
        json={**ACROSS, "destinationKey": "c.txt"},
    )
    assert copied.status_code == 200, copied.text
    body = copied.json()
    assert body["Key"] == "archive/c.txt" and body["Id"] == body["id"] and body["bucket_id"] == "archive"
    again = httpx.post(
        _url(srv, "object/copy"),
        headers={**SERVICE, "x-upsert": "true"},
        json={**ACROSS, "destinationKey": "c.txt"},
    )
    assert again.status_code == 200 and again.json()["Id"] == body["Id"]  # replaced in place
    moved = httpx.post(
        _url(srv, "object/move"),
        headers=SERVICE,
        json={**ACROSS, "destinationKey": "m.txt"},
    )
    assert moved.status_code == 200 and moved.json()["message"] == "Successfully moved"
    assert moved.json()["Key"] == "m.txt"
    assert httpx.get(_url(srv, "object/archive/m.txt"), headers=SERVICE).content == b"payload"
    gone = httpx.get(_url(srv, "object/docs/cm/source.txt"), headers=SERVICE)
    assert _error(gone)["code"] == "NoSuchKey"

    async def scenario() -> None:
        archive = (await _admin(srv)).storage.from_("archive")
        await archive.copy("c.txt", "c2.txt")
        await archive.move("c2.txt", "c3.txt")
        assert await archive.exists("c3.txt") is True
        assert await archive.exists("c2.txt") is False

    asyncio.run(scenario())


def test_info_and_head(srv: BackgroundServer) -> None:
    _put(srv, "open", "pub.txt", b"public!")
    _put(srv, "docs", "priv.txt", b"private")
    public_info = httpx.get(_url(srv, "object/info/public/open/pub.txt"))
    assert public_info.status_code == 200 and public_info.json()["size"] == 7
    assert set(public_info.json()) == {
        "id", "name", "version", "bucket_id", "size", "content_type", "cache_control", "etag", "metadata",
        "last_modified", "created_at",
    }  # fmt: skip
    # Without a JWT only a public bucket answers; with one, a private bucket does.
    assert _error(httpx.get(_url(srv, "object/info/docs/priv.txt")))["code"] == "NoSuchBucket"
    assert httpx.get(_url(srv, "object/info/open/pub.txt")).status_code == 200
    assert httpx.get(_url(srv, "object/info/authenticated/docs/priv.txt"), headers=SERVICE).json()["size"] == 7
    head = httpx.head(_url(srv, "object/docs/priv.txt"), headers=SERVICE)
    assert head.status_code == 200 and head.headers["Content-Length"] == "7" and head.content == b""
    assert head.headers["ETag"].startswith('"')
    assert httpx.head(_url(srv, "object/public/open/pub.txt")).headers["Content-Length"] == "7"
    assert httpx.head(_url(srv, "object/authenticated/docs/priv.txt"), headers=SERVICE).status_code == 200
    signed = httpx.post(_url(srv, "object/sign/docs/priv.txt"), headers=SERVICE, json={"expiresIn": 60})
    assert httpx.head(_url(srv, signed.json()["signedURL"])).headers["Content-Length"] == "7"
    assert httpx.head(_url(srv, "object/docs/absent.txt"), headers=SERVICE).status_code == 400


def test_bucket_type_and_size_limits_through_storage3(srv: BackgroundServer) -> None:
    async def scenario() -> None:
        pics = (await _admin(srv)).storage.from_("pics")
        await pics.upload("ok.png", b"png", {"content-type": "image/png"})
        await pics.upload("clip.mp4", b"mp4", {"content-type": "video/mp4"})
        with pytest.raises(StorageApiError) as wrong_type:
            await pics.upload("note.txt", b"text")  # storage3's default type: text/plain;charset=UTF-8
        error = wrong_type.value
        assert (error.message, error.code, str(error.status)) == (
            "mime type text/plain;charset=UTF-8 is not supported",
            "invalid_mime_type",
            "415",
        )
        with pytest.raises(StorageApiError) as too_large:
            await pics.upload("big.png", b"x" * 11, {"content-type": "image/png"})
        error = too_large.value
        assert (error.message, error.code, str(error.status)) == (
            "The object exceeded the maximum allowed size",
            "Payload too large",
            "413",
        )

    asyncio.run(scenario())
    raw = httpx.post(
        _url(srv, "object/pics/raw.png"), headers={**SERVICE, "Content-Type": "image/png"}, content=b"x" * 11
    )
    assert raw.status_code == 400 and _error(raw) == {
        "statusCode": "413",
        "code": "EntityTooLarge",
        "error": "Payload too large",
        "message": "The object exceeded the maximum allowed size",
    }
    over_global = httpx.post(
        _url(srv, "bucket"), headers=SERVICE, json={"id": "huge", "name": "huge", "file_size_limit": GLOBAL_LIMIT + 1}
    )
    assert _error(over_global)["code"] == "EntityTooLarge"


def test_image_transformation_is_refused_not_ignored(srv: BackgroundServer) -> None:
    _put(srv, "open", "img.png", b"png", "image/png")

    async def scenario() -> None:
        files = (await _admin(srv)).storage.from_("open")
        url = await files.get_public_url("img.png", {"transform": {"width": 10}})
        assert "/render/image/public/open/img.png?width=10" in url
        async with httpx.AsyncClient() as http:
            refused = await http.get(url)
        assert refused.status_code == 403 and refused.json() == {
            "statusCode": "403",
            "code": "FeatureNotEnabled",
            "error": "FeatureNotEnabled",
            "message": "feature not enabled for this tenant",
        }
        with pytest.raises(StorageApiError) as downloading:
            await files.download("img.png", {"transform": {"width": 10}})
        assert (downloading.value.code, str(downloading.value.status)) == ("FeatureNotEnabled", "403")

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nothing/here?x=1"), ("POST", "/object/nope"), ("PATCH", "/object/docs/a.txt"), ("GET", "/render/x")],
)
def test_unknown_routes_answer_storages_not_found(srv: BackgroundServer, method: str, path: str) -> None:
    response = httpx.request(method, f"{srv.url}/storage/v1{path}", headers=SERVICE)
    assert response.status_code == 404 and response.json() == {
        "statusCode": "404",
        "code": "InvalidRequest",
        "error": "Not Found",
        "message": f"Route {method}:{path} not found",
    }
