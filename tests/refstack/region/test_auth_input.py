"""Bad input to GoTrue and the livekit-token function: GoTrue's 4xx shapes, never a 500, and the server keeps
serving afterwards. One region serves the whole module: bad input must not change what later requests see."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.auth_input import MAX_BODY_BYTES
from harness.refstack.region.config import RegionConfig
from harness.refstack.region.functions import MAX_BODY_BYTES as FUNCTION_MAX_BODY_BYTES
from tests.refstack.region.conftest import PASSWORD, TEST_BCRYPT_COST, MakeUser, user_headers

LEGACY = {"apikey": keys.ANON_KEY, "Content-Type": "application/json"}
DEPTH = 100_000

BAD_BODIES = {
    "lone surrogate": b'{"email": "\\ud800@example.com", "password": "correct-horse"}',
    "lone surrogate in metadata": b'{"email": "s@example.com", "password": "correct-horse", "data": {"\\udfff": 1}}',
    "NUL in a string": b'{"email": "nul\\u0000@example.com", "password": "correct-horse"}',
    "NUL in metadata": b'{"email": "n@example.com", "password": "correct-horse", "data": {"x": "a\\u0000b"}}',
    "deep arrays": b"[" * DEPTH + b"]" * DEPTH,
    "deep objects": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
    "not UTF-8": b'{"email": "\xff\xfe@example.com"}',
    "truncated": b'{"email": "a@example.com", "password": ',
    "not an object": b'["a@example.com"]',
}


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    config = RegionConfig(data_dir=tmp_path_factory.mktemp("region"), bcrypt_cost=TEST_BCRYPT_COST)
    with background(lambda: build_app(config)) as server:
        yield server


def test_unparseable_or_unstorable_bodies_are_bad_json(region: BackgroundServer) -> None:
    headers = {**LEGACY, "Authorization": f"Bearer {keys.SERVICE_ROLE_KEY}"}
    for path in ["/auth/v1/signup", "/auth/v1/token?grant_type=password", "/auth/v1/admin/users"]:
        for name, content in BAD_BODIES.items():
            response = httpx.post(f"{region.url}{path}", headers=headers, content=content, timeout=30)
            assert response.status_code == 400, (path, name, response.text)
            body = response.json()
            assert body["code"] == 400 and body["error_code"] == "bad_json" and body["msg"], (path, name)
            assert response.headers["x-sb-error-code"] == "bad_json"


def test_bad_json_in_the_versioned_shape(region: BackgroundServer) -> None:
    headers = {**LEGACY, "X-Supabase-Api-Version": "2024-01-01"}
    response = httpx.post(f"{region.url}/auth/v1/signup", headers=headers, content=BAD_BODIES["lone surrogate"])
    assert response.status_code == 400
    assert response.json()["code"] == "bad_json" and "surrogate" in response.json()["message"]


def test_a_huge_body_is_refused_unread(region: BackgroundServer) -> None:
    huge = b'{"email": "h@example.com", "password": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'
    response = httpx.post(f"{region.url}/auth/v1/signup", headers=LEGACY, content=huge, timeout=30)
    assert response.status_code == 413
    assert response.json()["error_code"] == "request_entity_too_large"

    def chunks() -> object:
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    streamed = httpx.post(f"{region.url}/auth/v1/signup", headers=LEGACY, content=chunks(), timeout=30)
    assert streamed.status_code == 413


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "long@example.com", "password": "p" * 73}, 400, "validation_failed"),
        ({"email": "a" * 250 + "@example.com", "password": PASSWORD}, 400, "validation_failed"),
        ({"email": ["a@example.com"], "password": PASSWORD}, 400, "bad_json"),  # Go cannot decode it to a string
        ({"email": "m@example.com", "password": PASSWORD, "data": [1]}, 400, "validation_failed"),
        ({"email": "p@example.com", "password": 123456789}, 422, "weak_password"),
    ],
)
def test_wrong_types_and_lengths_are_validation_errors(
    region: BackgroundServer, body: dict[str, object], status: int, code: str
) -> None:
    response = httpx.post(f"{region.url}/auth/v1/signup", headers=LEGACY, json=body)
    assert (response.status_code, response.json()["error_code"]) == (status, code)


@pytest.mark.parametrize(
    "query", ["page=x", "per_page=1e3", "page=-5&per_page=0", "page=99999999999999999999999&per_page=999999999"]
)
def test_admin_list_paging_input(region: BackgroundServer, service_headers: dict[str, str], query: str) -> None:
    response = httpx.get(f"{region.url}/auth/v1/admin/users?{query}", headers=service_headers)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["error_code"] == "validation_failed"


def test_tokens_with_odd_subjects_are_refused_cleanly(region: BackgroundServer) -> None:
    # GoTrue's maybeLoadUserOrSession: no sub is 403, a sub that is no UUID 400, both bad_jwt.
    for sub, status in [("not-a-uuid", 400), ("\x00", 400), ("", 403)]:
        token = keys.sign({"sub": sub, "role": "authenticated", "exp": 4102444800, "session_id": "nope"})
        headers = {**LEGACY, "Authorization": f"Bearer {token}"}
        response = httpx.get(f"{region.url}/auth/v1/user", headers=headers)
        assert (response.status_code, response.json()["error_code"]) == (status, "bad_jwt")
        logout = httpx.post(f"{region.url}/auth/v1/logout", headers=headers)
        assert (logout.status_code, logout.json()["error_code"]) == (status, "bad_jwt")
        function = httpx.post(f"{region.url}/functions/v1/livekit-token", headers=headers, json={"room": "r"})
        assert function.status_code == 403


def test_function_bad_bodies_are_400(region: BackgroundServer, make_user: MakeUser) -> None:
    _, token, _ = make_user()
    depth = 10_000  # deeper than Python's parser goes, within the function's body limit
    for content in [b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth, BAD_BODIES["not UTF-8"]]:
        response = httpx.post(f"{region.url}/functions/v1/livekit-token", headers=user_headers(token), content=content)
        assert response.status_code == 400 and "room" in response.json()["error"], response.text


def test_function_room_that_is_no_uuid_is_not_a_membership(region: BackgroundServer, make_user: MakeUser) -> None:
    _, token, _ = make_user()
    for room in [b"x\\u0000y", b"' or 1=1 --"]:
        body = b'{"room": "' + room + b'"}'
        response = httpx.post(f"{region.url}/functions/v1/livekit-token", headers=user_headers(token), content=body)
        assert response.status_code == 403 and "not a member" in response.json()["error"]
    # A lone surrogate is not text at all: the strict JSON reader refuses the body (harness/model/strict_json.py).
    lone = httpx.post(
        f"{region.url}/functions/v1/livekit-token", headers=user_headers(token), content=b'{"room": "\\ud800"}'
    )
    assert lone.status_code == 400 and "surrogate" in lone.json()["error"], lone.text
    huge = b'{"room": "' + b"r" * FUNCTION_MAX_BODY_BYTES + b'"}'
    response = httpx.post(f"{region.url}/functions/v1/livekit-token", headers=user_headers(token), content=huge)
    assert response.status_code == 413


def test_the_server_still_serves_after_bad_input(region: BackgroundServer, make_user: MakeUser) -> None:
    for body in BAD_BODIES.values():
        httpx.post(f"{region.url}/auth/v1/signup", headers=LEGACY, content=body, timeout=30)
    user_id, token, _ = make_user()
    me = httpx.get(f"{region.url}/auth/v1/user", headers={**LEGACY, "Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["id"] == user_id


def test_admin_create_refuses_a_role_that_is_no_name(region: BackgroundServer, service_headers: dict[str, str]) -> None:
    for role in ["", "r" * 256, ["authenticated"], 7]:
        body = {"email": "role@example.com", "password": PASSWORD, "email_confirm": True, "role": role}
        response = httpx.post(f"{region.url}/auth/v1/admin/users", headers=service_headers, json=body)
        assert (response.status_code, response.json()["error_code"]) == (400, "validation_failed"), role


def test_anonymous_sign_in_is_off_by_default_with_gotrue_error(region: BackgroundServer) -> None:
    body = {"data": {}, "gotrue_meta_security": {"captcha_token": None}}  # what sign_in_anonymously sends
    response = httpx.post(f"{region.url}/auth/v1/signup", headers=LEGACY, json=body)
    assert response.status_code == 422
    assert response.json() == {
        "code": 422,
        "error_code": "anonymous_provider_disabled",
        "msg": "Anonymous sign-ins are disabled",
    }
