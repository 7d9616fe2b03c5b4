"""Fuzzing GoTrue at /auth/v1 (hypothesis, bounded): bodies with the fields each route reads, carrying hostile
values (NaN, floats beyond a double, lone surrogates, NUL, deep nesting, wrong types, huge strings), raw bodies,
odd grant types, query strings and header bytes. Never a 5xx; every error in GoTrue's shape for the API version
asked (legacy `{code:int, error_code, msg}` or 2024-01-01 `{code, message}`), or Kong's `{message}` for the key."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from tests.refstack import fuzzing, rawhttp
from tests.refstack.region.conftest import PASSWORD, TEST_BCRYPT_COST, create_user

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
VERSION = {"X-Supabase-Api-Version": "2024-01-01"}


@pytest.fixture(scope="module")
def gotrue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundServer, dict[str, str]]]:
    config = RegionConfig(data_dir=tmp_path_factory.mktemp("fuzz-auth"), bcrypt_cost=TEST_BCRYPT_COST)
    with background(lambda: build_app(config)) as server:
        user_id, token, refresh = create_user(server.url, "fuzz-auth@example.com")
        _, victim_token, _ = create_user(server.url)  # PUT /user may change this one's password or email
        yield server, {"id": user_id, "token": token, "refresh": refresh, "victim": victim_token}


def _check(response: httpx.Response, versioned: bool) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code < 400:
        return
    body = response.json()
    if body.keys() == {"message"}:  # Kong's key-auth in front of GoTrue
        assert response.status_code == 401, body
        return
    if versioned:
        assert isinstance(body["code"], str) and isinstance(body["message"], str), body
    else:
        assert body["code"] == response.status_code and isinstance(body["error_code"], str) and body["msg"], body
    assert response.headers["x-sb-error-code"] == (body["code"] if versioned else body["error_code"])


HOSTILE_SCALARS: list[Any] = [
    float("nan"), float("inf"), -float("inf"), 10**4000, -(2**70), 1e-300, -0.0, "\ud800", "\udfff\ud800", "a\x00b",
    "\U0001f600", "' or 1=1 --", "x" * 2000,
]  # fmt: skip
hostile = st.one_of(
    st.sampled_from(HOSTILE_SCALARS),
    st.sampled_from(HOSTILE_SCALARS),
    fuzzing.plain_json,
    st.text(alphabet=st.characters(codec="utf-16"), max_size=12),  # lone surrogates too
    st.text(min_size=300, max_size=400),
)


def _dump(body: dict[str, Any]) -> bytes:
    """JSON as a careless client writes it: NaN and lone surrogates included (json.dumps allows both)."""
    return json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")


ROUTES = {
    "signup": ("POST", "/auth/v1/signup", "anon"),
    "password": ("POST", "/auth/v1/token?grant_type=password", "anon"),
    "refresh": ("POST", "/auth/v1/token?grant_type=refresh_token", "anon"),
    "admin create": ("POST", "/auth/v1/admin/users", "service"),
    "update user": ("PUT", "/auth/v1/user", "user"),
}


def _valid_body(route: str, ids: dict[str, str], fresh: uuid.UUID) -> dict[str, Any]:
    """A body the route accepts, so a hostile value in it reaches the route's later checks and the database."""
    email = f"fuzz-{fresh}@example.com"
    return {
        "signup": {"email": email, "password": PASSWORD, "data": {"name": "x"}},
        "password": {"email": "fuzz-auth@example.com", "password": PASSWORD},
        "refresh": {"refresh_token": ids["refresh"]},
        "admin create": {"email": email, "password": PASSWORD, "email_confirm": True, "user_metadata": {}},
        "update user": {"data": {"name": "y"}},
    }[route]


ROUTE_FIELDS = {
    "signup": ["email", "password", "data"],
    "password": ["email", "password"],
    "refresh": ["refresh_token"],
    "admin create": ["email", "password", "user_metadata", "app_metadata", "email_confirm", "role"],
    "update user": ["data", "password", "email"],
}
"""The fields each route reads: a hostile value there reaches its checks (and, for metadata, the database)."""
hostile_field = st.one_of(hostile, st.dictionaries(st.text(max_size=8), hostile, min_size=1, max_size=3))


@FUZZ
@given(
    route_and_overrides=st.sampled_from(list(ROUTES)).flatmap(
        lambda route: st.tuples(
            st.just(route), st.dictionaries(st.sampled_from(ROUTE_FIELDS[route]), hostile_field, min_size=1, max_size=2)
        )
    ),
    fresh=st.uuids(),
    versioned=st.booleans(),
)
def test_valid_bodies_with_one_or_two_hostile_fields(
    gotrue: tuple[BackgroundServer, dict[str, str]],
    route_and_overrides: tuple[str, dict[str, Any]],
    fresh: uuid.UUID,
    versioned: bool,
) -> None:
    server, ids = gotrue
    route, overrides = route_and_overrides
    method, path, who = ROUTES[route]
    token = {"anon": keys.ANON_KEY, "service": keys.SERVICE_ROLE_KEY, "user": ids["victim"]}[who]
    headers = {"apikey": keys.ANON_KEY, "Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = {**_valid_body(route, ids, fresh), **overrides}
    response = httpx.request(
        method, server.url + path, content=_dump(body), headers={**headers, **(VERSION if versioned else {})}
    )
    _check(response, versioned)


@FUZZ
@given(
    route=st.sampled_from(list(ROUTES)),
    body=fuzzing.any_body({"email": "fuzz-auth@example.com", "password": PASSWORD}),
    versioned=st.booleans(),
)
def test_raw_and_hazardous_bodies(
    gotrue: tuple[BackgroundServer, dict[str, str]], route: str, body: bytes, versioned: bool
) -> None:
    server, ids = gotrue
    method, path, who = ROUTES[route]
    token = {"anon": keys.ANON_KEY, "service": keys.SERVICE_ROLE_KEY, "user": ids["victim"]}[who]
    headers = {"apikey": keys.ANON_KEY, "Authorization": f"Bearer {token}", **(VERSION if versioned else {})}
    _check(httpx.request(method, server.url + path, content=body, headers=headers), versioned)


@settings(FUZZ, max_examples=60)
@given(
    query=fuzzing.query,
    target=st.sampled_from([b"/auth/v1/token", b"/auth/v1/admin/users", b"/auth/v1/user", b"/auth/v1/settings"]),
    method=st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE"]),
    version=st.one_of(st.none(), fuzzing.header_value),
    user_path=st.one_of(st.uuids().map(lambda u: str(u).encode()), fuzzing.path_tail),
)
def test_query_strings_ids_and_header_bytes(
    gotrue: tuple[BackgroundServer, dict[str, str]],
    query: bytes,
    target: bytes,
    method: bytes,
    version: bytes | None,
    user_path: bytes,
) -> None:
    server, _ = gotrue
    if target == b"/auth/v1/admin/users" and method != b"POST":
        target += b"/" + user_path
    sent = [(b"apikey", keys.ANON_KEY.encode()), (b"Authorization", b"Bearer " + keys.SERVICE_ROLE_KEY.encode())]
    if version is not None:
        sent.append((b"X-Supabase-Api-Version", version))
    if method == b"DELETE" and user_path.startswith(b"0"):  # keep the fuzz user: delete only ids that do not exist
        target = b"/auth/v1/admin/users/" + str(uuid.uuid4()).encode()
    response = rawhttp.request(server.port, method, target + query, sent, b"{}")
    fuzzing.check_region_answer(method, target + query, response)


def test_gotrue_still_signs_in_after_fuzzing(gotrue: tuple[BackgroundServer, dict[str, str]]) -> None:
    server, _ = gotrue
    response = httpx.post(
        f"{server.url}/auth/v1/token?grant_type=password",
        headers={"apikey": keys.ANON_KEY},
        json={"email": "fuzz-auth@example.com", "password": PASSWORD},
    )
    assert response.status_code == 200, response.text
