"""Input PostgreSQL cannot store (NUL characters, lone surrogates, NaN, very deep JSON), traversal, oversize
bodies and roles the API cannot become: each gets storage-api's 4xx shape, never a 500; and what is stored
(user metadata, byte ranges) comes back as sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig

SERVICE = {"Authorization": f"Bearer {keys.SERVICE_ROLE_KEY}"}


@pytest.fixture(scope="module")
def srv() -> Iterator[BackgroundServer]:
    with background(lambda: build_app(RegionConfig(storage_file_size_limit_bytes=64 * 1024))) as server:
        seeded = httpx.post(
            f"{server.url}/storage/v1/object/attachments/seed/a.txt", headers=SERVICE, content=b"0123456789"
        )
        assert seeded.status_code == 200, seeded.text
        yield server


def _url(srv: BackgroundServer, path: str) -> str:
    return f"{srv.url}/storage/v1/{path}"


def _error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (400, 403, 404, 413, 429), (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"statusCode", "code", "error", "message"}, body
    return dict(body)


def _upload_with_metadata(srv: BackgroundServer, key: str, metadata: str) -> httpx.Response:
    return httpx.post(
        _url(srv, f"object/attachments/{key}"),
        headers=SERVICE,
        data={"cacheControl": "60", "metadata": metadata},
        files={"file": ("f.txt", b"x", "text/plain")},
    )


@pytest.mark.parametrize(
    "metadata",
    [
        '{"k": "nul \\u0000 inside"}',
        '{"k": "\\ud800 lone surrogate"}',
        '{"\\ud800": "surrogate key"}',
        '{"k": NaN}',
        '{"k": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"k": ' + "[" * 40 + "]" * 40 + "}",
        "[1, 2]",
        "not json",
    ],
)
def test_user_metadata_postgres_cannot_store_is_invalid_request(srv: BackgroundServer, metadata: str) -> None:
    response = _upload_with_metadata(srv, "meta/bad.txt", metadata)
    error = _error(response)
    assert (error["statusCode"], error["code"]) == ("400", "InvalidRequest"), error
    assert "metadata" in error["message"]
    missing = httpx.get(_url(srv, "object/info/attachments/meta/bad.txt"), headers=SERVICE)
    assert _error(missing)["code"] == "NoSuchKey"


def test_user_metadata_round_trips_through_info(srv: BackgroundServer) -> None:
    metadata = {"caption": "café ☕", "tags": ["a", "b"], "nested": {"n": 1.5, "ok": True}}
    assert _upload_with_metadata(srv, "meta/good.txt", json.dumps(metadata)).status_code == 200
    info = httpx.get(_url(srv, "object/info/attachments/meta/good.txt"), headers=SERVICE)
    assert info.status_code == 200 and info.json()["metadata"] == metadata
    assert info.json()["cache_control"] == "max-age=60"


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("GET", "object/attachments/seed/a%00.txt", None, "InvalidKey"),
        ("GET", "object/att%00chments/seed/a.txt", None, "NoSuchBucket"),
        ("GET", "object/attachments/seed/%2E%2E/a.txt", None, "InvalidKey"),
        ("POST", "object/list/attachments", {"prefix": "seed\u0000"}, "InvalidKey"),
        ("POST", "object/list/attachments", {"prefix": "", "search": "a\u0000"}, "InvalidRequest"),
        ("POST", "object/list/att%00chments", {"prefix": ""}, "NoSuchBucket"),
        ("POST", "object/copy", {"bucketId": "\u0000", "sourceKey": "seed/a.txt", "destinationKey": "x"}, None),
        (
            "POST",
            "object/move",
            {"bucketId": "attachments", "sourceKey": "seed/a.txt", "destinationKey": "a/\u0000"},
            None,
        ),
        ("POST", "object/sign/attachments/seed/a%00.txt", {"expiresIn": 60}, "InvalidKey"),
        ("POST", "bucket", {"id": "b\u0000", "name": "b\u0000"}, "InvalidBucketName"),
        ("PUT", "bucket/attachments", {"allowed_mime_types": ["image/\u0000"]}, "InvalidRequest"),
        ("GET", "bucket/att%00chments", None, "NoSuchBucket"),
    ],
)
def test_nul_and_traversal_are_storage_errors(
    srv: BackgroundServer, method: str, path: str, body: Any, code: str | None
) -> None:
    response = httpx.request(method, _url(srv, path), headers=SERVICE, json=body)
    error = _error(response)
    if code is not None:
        assert error["code"] == code, error
    assert httpx.get(_url(srv, "object/attachments/seed/a.txt"), headers=SERVICE).content == b"0123456789"


def test_names_with_nul_are_skipped_by_batch_routes(srv: BackgroundServer) -> None:
    deleted = httpx.request(
        "DELETE", _url(srv, "object/attachments"), headers=SERVICE, json={"prefixes": ["seed/\u0000", "nope"]}
    )
    assert deleted.status_code == 200 and deleted.json() == []
    signed = httpx.post(
        _url(srv, "object/sign/attachments"),
        headers=SERVICE,
        json={"expiresIn": 60, "paths": ["a\u0000", "seed/a.txt"]},
    )
    assert signed.status_code == 200
    assert [item["signedURL"] is None for item in signed.json()] == [True, False]


def test_oversize_bodies_are_entity_too_large(srv: BackgroundServer) -> None:
    declared = httpx.post(
        _url(srv, "object/attachments/big/declared.bin"), headers=SERVICE, content=b"z" * (64 * 1024 + 1)
    )
    assert _error(declared)["statusCode"] == "413"
    streamed = httpx.post(
        _url(srv, "object/attachments/big/streamed.bin"), headers=SERVICE, content=iter([b"z" * 16 * 1024] * 5)
    )
    assert _error(streamed)["statusCode"] == "413"


@pytest.mark.parametrize("role", ["postgres", "supabase_auth_admin", "authenticator", "nobody"])
def test_tokens_with_roles_the_api_cannot_become_are_access_denied(srv: BackgroundServer, role: str) -> None:
    token = keys.sign({"sub": "x", "role": role, "exp": 2**31})
    response = httpx.get(_url(srv, "object/attachments/seed/a.txt"), headers={"Authorization": f"Bearer {token}"})
    error = _error(response)
    assert (error["statusCode"], error["code"]) == ("403", "AccessDenied")


def test_a_supabase_admin_token_acts_as_the_service_role(srv: BackgroundServer) -> None:
    token = keys.sign({"role": "supabase_admin", "exp": 2**31})
    got = httpx.get(_url(srv, "object/attachments/seed/a.txt"), headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200 and got.content == b"0123456789"


def test_byte_ranges(srv: BackgroundServer) -> None:
    url = _url(srv, "object/attachments/seed/a.txt")
    part = httpx.get(url, headers={**SERVICE, "Range": "bytes=2-4"})
    assert part.status_code == 206 and part.content == b"234"
    assert part.headers["content-range"] == "bytes 2-4/10"
    tail = httpx.get(url, headers={**SERVICE, "Range": "bytes=-3"})
    assert tail.status_code == 206 and tail.content == b"789"
    beyond = httpx.get(url, headers={**SERVICE, "Range": "bytes=50-60"})
    assert _error(beyond)["statusCode"] == "416"
    garbage = httpx.get(url, headers={**SERVICE, "Range": "bytes=oops"})
    assert garbage.status_code == 200 and garbage.content == b"0123456789"
