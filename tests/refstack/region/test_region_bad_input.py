"""Bad input to every service of a region answers that service's 4xx shape, never a 500 (issue 14 items 4 and 9):
non-finite numbers (NaN, Infinity, floats beyond float64) in JSON bodies, lone surrogates and 100,000-deep
nesting on the admin routes, and tokens whose bytes are not UTF-8 in headers. One region serves the module: bad
input must change nothing later requests see."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from tests.refstack import rawhttp
from tests.refstack.region.conftest import TEST_BCRYPT_COST, create_conversation, create_user, user_headers

DEPTH = 100_000
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400"]
"""The three literals Python's json module accepts and no JSON parser of the real services does, and a float
beyond float64 (Go's encoding/json refuses it; Python reads it as inf and would write `Infinity` back)."""


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundServer, dict[str, str]]]:
    config = RegionConfig(data_dir=tmp_path_factory.mktemp("bad-input"), bcrypt_cost=TEST_BCRYPT_COST)
    with background(lambda: build_app(config)) as server:
        user_id, token, _ = create_user(server.url)
        conversation = create_conversation(server.url, token, [])
        yield server, {"user": user_id, "token": token, "conversation": conversation}


SERVICE = {"apikey": keys.SERVICE_ROLE_KEY, "Authorization": f"Bearer {keys.SERVICE_ROLE_KEY}"}


def _postgrest_bad_body(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"code", "details", "hint", "message"} and body["code"] == "PGRST102", body


def _gotrue_bad_json(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error_code"] == "bad_json" and body["code"] == 400 and body["msg"], body


def _storage_invalid_json(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["statusCode"] == "400" and body["code"] == "InvalidRequest", body
    assert "JSON" in body["message"] and "finite" in body["message"], body


def _error_field_json(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert "JSON" in response.json()["error"] and "finite" in response.json()["error"], response.text


def _message_json(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert "JSON" in response.json()["message"], response.text


Check = Callable[[httpx.Response], None]
# (method, path, body template with {n} for the number, headers kind, check)
BODY_ROUTES: list[tuple[str, str, str, str, Check]] = [
    ("POST", "/rest/v1/messages", '{"conversation_id":"{conv}","sender_id":"{user}","content":"x",'
     '"client_msg_id":"{uuid}","metadata":{"n":{n}}}', "user", _postgrest_bad_body),
    ("PATCH", "/rest/v1/messages?id=eq.1", '{"metadata":{"n":{n}}}', "user", _postgrest_bad_body),
    ("POST", "/rest/v1/rpc/is_member", '{"conv":"{conv}","n":{n}}', "user", _postgrest_bad_body),
    ("POST", "/auth/v1/signup", '{"email":"{uuid}@example.com","password":"correct-horse-battery","data":{"n":{n}}}',
     "anon", _gotrue_bad_json),
    ("POST", "/auth/v1/token?grant_type=password", '{"email":"a@example.com","password":"x","n":{n}}', "anon",
     _gotrue_bad_json),
    ("POST", "/auth/v1/admin/users", '{"email":"{uuid}@example.com","password":"correct-horse-battery",'
     '"email_confirm":true,"user_metadata":{"n":{n}}}', "service", _gotrue_bad_json),
    ("PUT", "/auth/v1/user", '{"data":{"n":{n}}}', "user", _gotrue_bad_json),
    ("POST", "/functions/v1/livekit-token", '{"room":"{conv}","n":{n}}', "user", _error_field_json),
    ("POST", "/storage/v1/object/list/attachments", '{"prefix":"","limit":{n}}', "service", _storage_invalid_json),
    ("POST", "/storage/v1/object/sign/attachments/a.txt", '{"expiresIn":{n}}', "service", _storage_invalid_json),
    ("POST", "/storage/v1/bucket", '{"id":"b{n}","name":"b","public":false,"file_size_limit":{n}}', "service",
     _storage_invalid_json),
    ("POST", "/realtime/v1/api/broadcast/room/events/e", '{"n":{n}}', "anon", _error_field_json),
    ("POST", "/realtime/v1/api/broadcast", '{"messages":[{"topic":"t","event":"e","payload":{"n":{n}}}]}', "anon",
     _error_field_json),
    ("POST", "/_admin/hops", '{"fault":{n}}', "service", _message_json),
]  # fmt: skip


def _headers(kind: str, token: str) -> dict[str, str]:
    base = {"Content-Type": "application/json"}
    if kind == "user":
        return {**base, **user_headers(token)}
    if kind == "service":
        return {**base, **SERVICE}
    return {**base, "apikey": keys.ANON_KEY}


_BODY_CASES = [
    pytest.param(*route, number, id=f"{route[0]} {route[1]} {number}")
    for route in BODY_ROUTES
    for number in NON_FINITE
    if not (route[1].startswith("/rest/") and number == "1e400")  # PostgREST takes it (next test)
]


@pytest.mark.parametrize(("method", "path", "template", "kind", "check", "number"), _BODY_CASES)
def test_non_finite_numbers_in_a_body_are_refused_as_bad_json(
    region: tuple[BackgroundServer, dict[str, str]],
    method: str,
    path: str,
    template: str,
    kind: str,
    check: Check,
    number: str,
) -> None:
    server, ids = region
    body = (
        template.replace("{conv}", ids["conversation"])
        .replace("{user}", ids["user"])
        .replace("{uuid}", f"nf-{number.lower()}-{abs(hash(path)) % 10_000}")
        .replace("{n}", number)
    )
    response = httpx.request(
        method, server.url + path, content=body.encode(), headers=_headers(kind, ids["token"]), timeout=30
    )
    check(response)


def test_postgrest_stores_a_float_beyond_float64_as_postgres_does(
    region: tuple[BackgroundServer, dict[str, str]],
) -> None:
    """1e400 is valid JSON: PostgREST passes it to jsonb (numeric, any precision), so the parser must not refuse it."""
    server, ids = region
    body = (
        f'{{"conversation_id":"{ids["conversation"]}","sender_id":"{ids["user"]}","content":"big",'
        f'"client_msg_id":"big-number","metadata":{{"n":1e400}}}}'
    )
    headers = {**_headers("user", ids["token"]), "Prefer": "return=representation"}
    response = httpx.post(server.url + "/rest/v1/messages", content=body, headers=headers, timeout=30)
    assert response.status_code == 201, response.text
    assert json.loads(response.text)[0]["metadata"]["n"] == 10**400


ADMIN_BODY_ROUTES = ["/_admin/hops", "/_admin/demote", "/_admin/switchover"]
BAD_ADMIN_BODIES = {
    "deep arrays": b"[" * DEPTH + b"]" * DEPTH,
    "deep objects": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
    "NaN": b'{"fault": NaN, "primary_url": NaN}',
    "lone surrogate": b'{"fault": "\\ud800", "primary_url": "http://\\ud800"}',
    "not UTF-8": b'{"fault": "\xff"}',
}


@pytest.mark.parametrize("path", ADMIN_BODY_ROUTES)
@pytest.mark.parametrize("name", list(BAD_ADMIN_BODIES))
def test_admin_routes_refuse_bad_json_with_400(
    region: tuple[BackgroundServer, dict[str, str]], path: str, name: str
) -> None:
    server, _ = region
    response = httpx.post(server.url + path, content=BAD_ADMIN_BODIES[name], headers=SERVICE, timeout=30)
    assert response.status_code == 400, (name, response.text)
    assert response.json()["message"]


# -- tokens whose bytes are not UTF-8 ---------------------------------------------------------------------------
BAD_TOKENS = [b"\xff", b"\xed\xa0\x80", b"\xc3", b"eyJ\x80.x.y"]
"""Invalid UTF-8: a stray byte, an encoded surrogate (U+D800 as UTF-8), a truncated sequence, one inside a JWT."""

TOKEN_ROUTES: list[tuple[bytes, bytes, bytes]] = [
    (b"GET", b"/rest/v1/messages", b"authorization"),
    (b"POST", b"/rest/v1/rpc/is_member", b"authorization"),
    (b"GET", b"/auth/v1/user", b"authorization"),
    (b"POST", b"/auth/v1/logout", b"authorization"),
    (b"GET", b"/auth/v1/admin/users", b"authorization"),
    (b"POST", b"/functions/v1/livekit-token", b"authorization"),
    (b"GET", b"/storage/v1/bucket", b"authorization"),
    (b"GET", b"/storage/v1/object/attachments/a.txt", b"authorization"),
    (b"POST", b"/storage/v1/object/list/attachments", b"authorization"),
    (b"GET", b"/realtime/v1/websocket?vsn=1.0.0", b"x-api-key"),
    (b"POST", b"/realtime/v1/api/broadcast", b"authorization"),
    (b"POST", b"/realtime/v1/api/broadcast", b"apikey"),
    (b"GET", b"/_admin/hops", b"authorization"),
    (b"GET", b"/_admin/postgres", b"authorization"),
]


def _with_token(name: bytes, token: bytes) -> list[tuple[bytes, bytes]]:
    headers = [(b"apikey", keys.ANON_KEY.encode())] if name != b"apikey" else []
    value = b"Bearer " + token if name == b"authorization" else token
    return [*headers, (name, value), (b"Content-Type", b"application/json")]


@pytest.mark.parametrize(("method", "target", "header"), TOKEN_ROUTES, ids=[f"{m} {t} {h}" for m, t, h in TOKEN_ROUTES])
def test_a_token_that_is_not_utf8_is_refused_like_any_malformed_token(
    region: tuple[BackgroundServer, dict[str, str]], method: bytes, target: bytes, header: bytes
) -> None:
    server, _ = region
    upgrade = [(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket"), (b"Sec-WebSocket-Version", b"13"),
               (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ==")] if b"websocket" in target else []  # fmt: skip
    garbage = rawhttp.request(server.port, method, target, _with_token(header, b"garbage") + upgrade, b"{}")
    assert 400 <= garbage.status < 500, garbage
    for token in BAD_TOKENS:
        response = rawhttp.request(server.port, method, target, _with_token(header, token) + upgrade, b"{}")
        assert response.status == garbage.status, (token, response)
        assert set(response.json()) == set(garbage.json()), (token, response.body)


def test_the_region_still_serves_after_bad_input(region: tuple[BackgroundServer, dict[str, str]]) -> None:
    server, ids = region
    health = httpx.get(server.url + "/health", timeout=10)
    assert health.status_code == 200 and health.json()["role"] == "primary", health.text
    listed = httpx.get(server.url + "/rest/v1/conversations?select=id", headers=user_headers(ids["token"]), timeout=10)
    assert listed.status_code == 200 and [r["id"] for r in listed.json()] == [ids["conversation"]]


ROUTER_ERRORS = [
    ("PUT", "/rest/v1/messages", 405, {"code": "PGRST117"}),
    ("GET", "/rest/v1/messages/extra", 404, {"code": "PGRST125"}),
    ("GET", "/auth/v1/no-such-route", 404, {"error_code": "not_found"}),
    ("DELETE", "/auth/v1/settings", 405, {"error_code": "method_not_allowed"}),
    ("POST", "/functions/v1/livekit-token/extra", 404, {}),
    ("GET", "/no/such/service", 404, {"message": "no Route matched with those values"}),
    ("POST", "/health", 405, {"message": "Method Not Allowed"}),
]


@pytest.mark.parametrize(
    ("method", "path", "status", "fields"), ROUTER_ERRORS, ids=[f"{m} {p}" for m, p, *_ in ROUTER_ERRORS]
)
def test_paths_and_methods_no_route_serves_answer_in_the_services_shape(
    region: tuple[BackgroundServer, dict[str, str]], method: str, path: str, status: int, fields: dict[str, str]
) -> None:
    """aiohttp's own 404 and 405 are text/plain; the region answers them as the service the path belongs to."""
    server, ids = region
    response = httpx.request(method, server.url + path, headers=_headers("user", ids["token"]), timeout=10)
    assert response.status_code == status, response.text
    body = response.json()
    assert fields.items() <= body.items(), body
    if path.startswith("/rest/"):
        assert set(body) == {"code", "details", "hint", "message"}
    if path.startswith("/functions/"):
        assert isinstance(body["error"], str)
    if status == 405:
        assert method not in response.headers["Allow"]


@pytest.mark.parametrize("length", [255, 256, 2_000])
def test_a_refresh_token_longer_than_any_stored_one_is_not_found(
    region: tuple[BackgroundServer, dict[str, str]], length: int
) -> None:
    """auth.refresh_tokens.token is varchar(255): a longer token cannot exist (was a 500 from Postgres)."""
    server, _ = region
    response = httpx.post(
        f"{server.url}/auth/v1/token?grant_type=refresh_token",
        headers={"apikey": keys.ANON_KEY},
        json={"refresh_token": "x" * length},
        timeout=10,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "refresh_token_not_found"
