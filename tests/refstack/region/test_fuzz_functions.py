"""Fuzzing Edge Functions at /functions/v1 (hypothesis, bounded): the livekit-token function with valid and hostile
rooms, extra fields, raw and hazardous bodies, tokens of every kind, other methods and unknown function names.
Never a 5xx; an error is `{"error": …}` (or the gateway's `{"code": 401, "msg": "Invalid JWT"}`); a success is
a LiveKit token for exactly the room asked, and only for a member."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.model import keys, strict_json
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from harness.refstack.region.functions import MAX_BODY_BYTES
from tests.refstack import fuzzing, rawhttp
from tests.refstack.region.conftest import TEST_BCRYPT_COST, create_conversation, create_user

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
URL = "/functions/v1/livekit-token"


@pytest.fixture(scope="module")
def functions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundServer, dict[str, str]]]:
    config = RegionConfig(data_dir=tmp_path_factory.mktemp("fuzz-functions"), bcrypt_cost=TEST_BCRYPT_COST)
    with background(lambda: build_app(config)) as server:
        _, member, _ = create_user(server.url)
        _, outsider, _ = create_user(server.url)
        room = create_conversation(server.url, member, [])
        yield server, {"member": member, "outsider": outsider, "room": room}


def _check(response: httpx.Response, asked_room: Any, ids: dict[str, str], who: str) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    body = response.json()
    if response.status_code == 200:
        assert who == "member" and asked_room == ids["room"], (who, asked_room)
        grant = jwt.decode(body["token"], options={"verify_signature": False})["video"]
        assert grant["room"] == ids["room"] and grant["roomJoin"] is True
        return
    if response.status_code == 401:
        assert body == {"code": 401, "msg": "Invalid JWT"}, body
        return
    assert isinstance(body["error"], str) and body["error"], body


tokens = st.sampled_from(["member", "outsider", "anon", "service", "garbage", "none"])
hostile_room = st.one_of(
    st.sampled_from([None, "", "\ud800", "a\x00b", "' or 1=1 --", "00000000-0000-0000-0000-000000000000", 10**4000]),
    st.sampled_from([float("nan"), float("inf"), 1e-300]),
    fuzzing.plain_json,
    st.uuids().map(str),
    st.text(max_size=60),
)


def _headers(who: str, ids: dict[str, str]) -> dict[str, str]:
    token = {"anon": keys.ANON_KEY, "service": keys.SERVICE_ROLE_KEY, "garbage": "x.y.z"}.get(who) or ids.get(who)
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"} if token else {}


@FUZZ
@given(
    who=tokens,
    room=st.one_of(st.just("<room>"), hostile_room),
    extra=st.dictionaries(st.text(max_size=8), fuzzing.plain_json, max_size=3),
)
def test_rooms_and_extra_fields(
    functions: tuple[BackgroundServer, dict[str, str]], who: str, room: Any, extra: dict[str, Any]
) -> None:
    server, ids = functions
    room = ids["room"] if room == "<room>" else room
    body = json.dumps({**extra, "room": room}, allow_nan=True).encode("utf-8", "surrogatepass")
    response = httpx.post(server.url + URL, content=body, headers=_headers(who, ids), timeout=10)
    _check(response, room, ids, who)


@FUZZ
@given(who=tokens, body=fuzzing.any_body({"room": "<room>"}))
def test_raw_and_hazardous_bodies(functions: tuple[BackgroundServer, dict[str, str]], who: str, body: bytes) -> None:
    server, ids = functions
    body = body.replace(b"<room>", ids["room"].encode())
    response = httpx.post(server.url + URL, content=body, headers=_headers(who, ids), timeout=10)
    if who in ("member", "outsider"):  # past the JWT check, the body is read: too big, or not JSON it takes
        if len(body) > MAX_BODY_BYTES:
            assert response.status_code == 413 and "JSON" in response.json()["error"], response.text
        else:
            try:
                strict_json.loads(body)
            except strict_json.JsonBodyError:
                assert response.status_code == 400 and "JSON" in response.json()["error"], response.text
    _check(response, ids["room"] if response.status_code == 200 else None, ids, who)


@settings(FUZZ, max_examples=60)
@given(
    method=st.sampled_from([b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS"]),
    name=fuzzing.path_tail,
    query=fuzzing.query,
    extra=st.lists(
        st.tuples(st.sampled_from([b"x-region", b"Authorization", b"Content-Type"]), fuzzing.header_value), max_size=2
    ),
)
def test_methods_names_queries_and_header_bytes(
    functions: tuple[BackgroundServer, dict[str, str]],
    method: bytes,
    name: bytes,
    query: bytes,
    extra: list[tuple[bytes, bytes]],
) -> None:
    server, ids = functions
    target = b"/functions/v1/" + (name or b"livekit-token") + query
    sent = [(b"Authorization", b"Bearer " + ids["member"].encode()), *extra]
    response = rawhttp.request(server.port, method, target, sent, b'{"room": "' + ids["room"].encode() + b'"}')
    fuzzing.check_region_answer(method, target, response)
