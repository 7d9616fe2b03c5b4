"""Hostile input to /storage/v1 never produces a 500: random paths, bodies, headers and tokens (bounded runs)."""

from __future__ import annotations

import json
import string
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.model import keys, strict_json
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from tests.refstack import fuzzing

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

SERVICE = {"Authorization": f"Bearer {keys.SERVICE_ROLE_KEY}"}
USER_TOKEN, _ = keys.mint_access_token(user_id=str(uuid.uuid4()), email="fuzz@example.com", issuer="fuzz")
USER = {"Authorization": f"Bearer {USER_TOKEN}"}

header_text = st.text(alphabet=string.printable.strip("\r\n\x0b\x0c"), max_size=60).map(str.strip)
path_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="?#"), min_size=0, max_size=40
)
json_scalars = (
    st.none()
    | st.just("\ud800-lone-surrogate")
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.text(max_size=20)
    | st.floats()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def srv() -> Iterator[BackgroundServer]:
    config = RegionConfig(storage_file_size_limit_bytes=4096)
    with background(lambda: build_app(config)) as server:
        seeded = httpx.post(
            f"{server.url}/storage/v1/object/attachments/seed/a.txt", headers=SERVICE, content=b"seed", timeout=10
        )
        assert seeded.status_code == 200
        yield server


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400 and response.request.method != "HEAD":
        body = response.json()
        assert isinstance(body["statusCode"], str) and body["message"], body


def _url(srv: BackgroundServer, path: str) -> str:
    return f"{srv.url}/storage/v1/{path}"


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]),
    prefix=st.sampled_from(
        [
            "object/attachments/",
            "object/authenticated/attachments/",
            "object/public/",
            "object/sign/attachments/",
            "object/info/attachments/",
            "object/",
            "bucket/",
        ]
    ),
    path=path_text,
    body=st.binary(max_size=300),
    content_type=header_text,
    upsert=st.sampled_from(["true", "false", "TRUE", ""]),
    auth=st.sampled_from([SERVICE, USER, {}, {"Authorization": "Bearer not.a.jwt"}, {"Authorization": "Basic x"}]),
)
def test_random_paths_bodies_and_headers(
    srv: BackgroundServer,
    method: str,
    prefix: str,
    path: str,
    body: bytes,
    content_type: str,
    upsert: str,
    auth: dict[str, str],
) -> None:
    headers = {**auth, "x-upsert": upsert, "cache-control": content_type}
    if content_type:
        headers["Content-Type"] = content_type
    url = _url(srv, prefix + urllib.parse.quote(path, safe="/"))
    _check(httpx.request(method, url, headers=headers, content=body if method != "GET" else None, timeout=10))


@FUZZ
@given(
    route=st.sampled_from(
        [
            "object/list/attachments",
            "object/sign/attachments/seed/a.txt",
            "object/sign/attachments",
            "object/move",
            "object/copy",
            "bucket",
            "bucket/attachments",
        ]
    ),
    method=st.sampled_from(["POST", "PUT", "DELETE"]),
    body=json_values,
    auth=st.sampled_from([SERVICE, USER]),
)
def test_random_json_bodies(srv: BackgroundServer, route: str, method: str, body: Any, auth: dict[str, str]) -> None:
    if route == "bucket/attachments" and method == "DELETE":
        method = "PUT"  # keep the bucket the other examples need
    content = json.dumps(body, allow_nan=True).encode()
    headers = {**auth, "Content-Type": "application/json"}
    _check(httpx.request(method, _url(srv, route), headers=headers, content=content, timeout=10))


@FUZZ
@given(
    boundary=st.text(alphabet=string.ascii_letters + string.digits + "-'()+_,./:=?", min_size=1, max_size=20),
    declared=st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=0, max_size=20),
    parts=st.lists(
        st.tuples(
            st.sampled_from(["file", "cacheControl", "metadata", "other", ""]), header_text, st.binary(max_size=200)
        ),
        max_size=4,
    ),
    tail=st.binary(max_size=40),
    size=st.integers(0, 6000),
)
def test_random_multipart_uploads(
    srv: BackgroundServer, boundary: str, declared: str, parts: list[tuple[str, str, bytes]], tail: bytes, size: int
) -> None:
    """Well-formed and broken multipart bodies, with a declared boundary that may not match the one used."""
    chunks = []
    for name, ctype, data in parts:
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="f"\r\n'.encode())
        if ctype:
            chunks.append(f"Content-Type: {ctype}\r\n".encode())
        chunks.append(b"\r\n" + data + (b"z" * size if name == "file" else b"") + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode() + tail)
    headers = {**USER, "Content-Type": f"multipart/form-data; boundary={declared or boundary}"}
    url = _url(srv, f"object/attachments/{uuid.uuid4()}/f.bin")
    _check(httpx.post(url, headers=headers, content=b"".join(chunks), timeout=10))
    _check(
        httpx.post(
            _url(srv, "object/attachments/seed/m.bin"),
            headers={**SERVICE, **headers, "x-upsert": "true"},
            content=b"".join(chunks),
            timeout=10,
        )
    )


def test_server_still_serves_after_fuzzing(srv: BackgroundServer) -> None:
    got = httpx.get(_url(srv, "object/attachments/seed/a.txt"), headers=SERVICE, timeout=10)
    assert got.status_code == 200 and got.content == b"seed"


JSON_ROUTES = [
    ("POST", "object/list/attachments", {"prefix": "", "limit": 10}),
    ("POST", "object/sign/attachments/seed/a.txt", {"expiresIn": 60}),
    ("POST", "object/sign/attachments", {"expiresIn": 60, "paths": ["seed/a.txt"]}),
    ("POST", "object/copy", {"bucketId": "attachments", "sourceKey": "seed/a.txt", "destinationKey": "seed/c.txt"}),
    ("POST", "bucket", {"id": "fuzzed", "name": "fuzzed"}),
    ("PUT", "bucket/attachments", {"public": False}),
    ("DELETE", "object/attachments", {"prefixes": ["seed/none.txt"]}),
]


@FUZZ
@given(route=st.sampled_from(JSON_ROUTES), body=st.data())
def test_hazardous_json_bodies_are_invalid_requests(
    srv: BackgroundServer, route: tuple[str, str, dict[str, Any]], body: st.DataObject
) -> None:
    """NaN, Infinity, floats beyond a double, lone surrogates, deep nesting, invalid UTF-8 in an otherwise valid body:
    JSON.parse (Storage's parser) refuses them, so does the stand-in, as InvalidRequest naming JSON."""
    method, path, fields = route
    raw = body.draw(fuzzing.hazard_json(fields))
    response = httpx.request(
        method, _url(srv, path), headers={**SERVICE, "Content-Type": "application/json"}, content=raw, timeout=30
    )
    _check(response)
    try:
        strict_json.loads(raw or b"{}")  # an empty body is {} to Storage
    except strict_json.JsonBodyError:
        refused = response.json()
        assert response.status_code == 400 and refused["code"] == "InvalidRequest" and "JSON" in refused["message"]
