"""Raw-socket fuzzing of every HTTP surface of a region (REST, auth, functions, storage, realtime's handshake and
REST API, health and admin routes): random methods, paths, query strings, header values and bodies, bytes that
are not UTF-8 included, put on the wire exactly. Never a 5xx, never an unhandled error in the server's log, and
every error the region answers is JSON in its service's shape (tests/refstack/fuzzing.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from tests.refstack import fuzzing, rawhttp
from tests.refstack.region.conftest import TEST_BCRYPT_COST, create_conversation, create_user

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

PREFIXES = [
    b"/rest/v1/messages", b"/rest/v1/conversations", b"/rest/v1/rpc/is_member", b"/rest/v1/", b"/rest/v1/rpc/",
    b"/auth/v1/signup", b"/auth/v1/token", b"/auth/v1/user", b"/auth/v1/logout", b"/auth/v1/admin/users",
    b"/auth/v1/admin/users/", b"/auth/v1/settings", b"/auth/v1/",
    b"/functions/v1/livekit-token", b"/functions/v1/",
    b"/storage/v1/object/attachments/", b"/storage/v1/object/list/attachments", b"/storage/v1/object/sign/attachments/",
    b"/storage/v1/object/public/attachments/", b"/storage/v1/bucket", b"/storage/v1/bucket/", b"/storage/v1/",
    b"/realtime/v1/websocket", b"/realtime/v1/api/broadcast", b"/realtime/v1/api/broadcast/", b"/realtime/v1/",
    b"/health", b"/_admin/hops", b"/_admin/postgres", b"/_replication/status", b"/", b"/nowhere/",
]  # fmt: skip
METHODS = [b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"HEAD", b"OPTIONS"]
HEADER_NAMES = [
    b"Authorization", b"apikey", b"x-api-key", b"Content-Type", b"Prefer", b"Accept", b"Range", b"Accept-Profile",
    b"Content-Profile", b"X-Supabase-Api-Version", b"x-upsert", b"cache-control", b"Origin", b"X-Client-Info",
    b"If-None-Match", b"Accept-Encoding", b"Content-Encoding", b"x-region",
]  # fmt: skip


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundServer, dict[bytes, bytes]]]:
    config = RegionConfig(data_dir=tmp_path_factory.mktemp("fuzz-http"), bcrypt_cost=TEST_BCRYPT_COST)
    with background(lambda: build_app(config)) as server:
        _, token, _ = create_user(server.url)
        create_conversation(server.url, token, [])
        credentials = {
            b"anon": keys.ANON_KEY.encode(),
            b"service": keys.SERVICE_ROLE_KEY.encode(),
            b"user": token.encode(),
        }
        yield server, credentials


@pytest.fixture(autouse=True)
def no_unhandled_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The region logs an unhandled exception (its last-resort 500) at ERROR: a fuzz case must never reach one."""
    with caplog.at_level(logging.ERROR):
        yield
    assert [r.getMessage() for r in caplog.records if r.name.startswith("harness") and r.levelno >= logging.ERROR] == []


CREDENTIAL_TARGETS = [
    b"/rest/v1/messages", b"/auth/v1/user", b"/functions/v1/livekit-token", b"/storage/v1/bucket",
    b"/storage/v1/object/attachments/a.txt", b"/realtime/v1/api/broadcast", b"/_admin/hops",
]  # fmt: skip
credential = st.sampled_from([b"anon", b"service", b"user", b"none"])
headers = st.lists(st.tuples(st.sampled_from(HEADER_NAMES), fuzzing.header_value), max_size=4)


@FUZZ
@given(
    method=st.sampled_from(METHODS),
    prefix=st.sampled_from(PREFIXES),
    tail=fuzzing.path_tail,
    query=fuzzing.query,
    who=credential,
    extra=headers,
    body=st.one_of(st.just(b""), fuzzing.any_body()),
)
def test_random_requests_never_get_a_5xx(
    region: tuple[BackgroundServer, dict[bytes, bytes]],
    method: bytes,
    prefix: bytes,
    tail: bytes,
    query: bytes,
    who: bytes,
    extra: list[tuple[bytes, bytes]],
    body: bytes,
) -> None:
    server, credentials = region
    sent: list[tuple[bytes, bytes]] = []
    if who != b"none":
        sent += [(b"apikey", credentials[b"anon"]), (b"Authorization", b"Bearer " + credentials[who])]
    sent += extra
    target = prefix + (tail if prefix.endswith(b"/") else b"") + query
    response = rawhttp.request(server.port, method, target, sent, body)
    fuzzing.check_region_answer(method, target, response)


@FUZZ
@given(
    name=st.sampled_from([b"Authorization", b"apikey", b"x-api-key"]),
    value=fuzzing.header_value,
    bearer=st.booleans(),
    target=st.sampled_from(CREDENTIAL_TARGETS),
)
def test_random_credentials_are_refused_in_shape(
    region: tuple[BackgroundServer, dict[bytes, bytes]], name: bytes, value: bytes, bearer: bool, target: bytes
) -> None:
    server, credentials = region
    sent = [(b"apikey", credentials[b"anon"])] if name != b"apikey" else []
    sent.append((name, (b"Bearer " if bearer else b"") + value))
    response = rawhttp.request(server.port, b"POST", target, sent, b"{}")
    fuzzing.check_region_answer(b"POST", target, response)


@settings(FUZZ, max_examples=40)
@given(value=fuzzing.header_value, upgrade=st.booleans(), query=fuzzing.query)
def test_random_websocket_handshakes_never_get_a_5xx(
    region: tuple[BackgroundServer, dict[bytes, bytes]], value: bytes, upgrade: bool, query: bytes
) -> None:
    server, _ = region
    sent = [(b"x-api-key", value)]
    if upgrade:
        sent += [(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket"), (b"Sec-WebSocket-Version", b"13"),
                 (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ==")]  # fmt: skip
    target = b"/realtime/v1/websocket" + query
    response = rawhttp.request(server.port, b"GET", target, sent)
    if response.status != 101:
        fuzzing.check_region_answer(b"GET", target, response)


def test_the_region_still_serves_after_fuzzing(region: tuple[BackgroundServer, dict[bytes, bytes]]) -> None:
    server, credentials = region
    response = rawhttp.request(server.port, b"GET", b"/rest/v1/conversations?select=id", [
        (b"apikey", credentials[b"anon"]), (b"Authorization", b"Bearer " + credentials[b"user"])])  # fmt: skip
    assert response.status == 200 and len(response.json()) == 1, response
