"""Property-based fuzzing of every HTTP surface of the LiveKit stand-in (issue 14): `/`, Twirp RoomService (JSON
and protobuf), `/rtc/validate`, the `/rtc` handshake and its websocket frames, and any other path. Random methods,
paths, query strings, headers, tokens and bodies (invalid UTF-8, lone surrogates, NaN, 10**400, 2**63, deep
nesting, oversize).

Every answer is below 500, in LiveKit's shape (Twirp JSON under /twirp, plain text elsewhere and for auth
failures), the server logs no error, and after a failed request the rooms are what they were. A request that
succeeds is undone before the next example.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import websocket
from aiohttp.http_exceptions import HttpProcessingError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from livekit.protocol import room as proto_room
from livekit.protocol import rtc as proto_rtc
from lk_helpers import join_token, raw_token, recv_kind, ws_url
from test_livekit_bad_input import strict_json

from harness.procs.serving import BackgroundServer, background
from harness.refstack.livekit.server import ROOMS, build_app
from harness.refstack.livekit.twirp import METHODS, STATUS_BY_CODE, UNIMPLEMENTED

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
TWIRP = "/twirp/livekit.RoomService/"
ADMIN = raw_token({"sub": "admin", "video": {"roomCreate": True, "roomList": True, "roomAdmin": True, "room": "r1"}})
UNKNOWN_METHOD = "Invalid method encountered"
"""aiohttp's HTTP parser answers a method it does not know with a plain 400 before any route runs."""


class ErrorLog(logging.Handler):
    """Errors the server logs (a handler that raised), other than aiohttp refusing a malformed HTTP request."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not (record.exc_info and isinstance(record.exc_info[1], HttpProcessingError)):
            self.records.append(self.format(record))


@dataclass
class Target:
    server: BackgroundServer
    client: httpx.Client
    errors: ErrorLog
    rooms: list[str] = field(default_factory=list)

    def reset(self) -> None:
        async def close_all() -> None:
            self.server.app[ROOMS].close_all()  # type: ignore[index]

        self.server.call(close_all)
        self.rooms = self.list_rooms()

    def list_rooms(self) -> list[str]:
        headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
        resp = self.client.post(TWIRP + "ListRooms", content=b"{}", headers=headers)
        assert resp.status_code == 200, resp.text
        return sorted(room["name"] for room in strict_json(resp.text)["rooms"])  # type: ignore[index]

    def check(self, method: str, url: str, content: bytes, headers: dict[str, str | bytes]) -> None:
        resp = self.client.request(method, url, content=content, headers=headers)
        where = (method, url, headers, content[:200], resp.status_code, resp.text[:300])
        unimplemented = resp.status_code == 501 and httpx.URL(url).path.removeprefix(TWIRP) in UNIMPLEMENTED
        assert resp.status_code < 500 or unimplemented, where  # the one 5xx: RoomService methods not served here
        assert not self.errors.records, self.errors.records
        if resp.status_code >= 400 and method != "HEAD":
            assert_error_shape(resp, twirp=httpx.URL(url).path.startswith("/twirp/"))
        if resp.status_code >= 400 or method != "POST":
            assert self.list_rooms() == self.rooms, where
        else:
            self.reset()


def assert_error_shape(resp: httpx.Response, *, twirp: bool) -> None:
    text = resp.content.decode("utf-8")  # plain text or JSON, it is valid UTF-8
    if text.startswith(UNKNOWN_METHOD):
        assert resp.status_code == 400
    elif twirp and resp.headers.get("content-type", "").startswith("application/json"):
        body = strict_json(text)
        assert isinstance(body, dict) and set(body) <= {"code", "msg", "meta"}, text
        assert STATUS_BY_CODE[body["code"]] == resp.status_code and isinstance(body["msg"], str), text
    else:  # livekit-server's auth middleware and its plain handlers answer text
        assert resp.headers["content-type"].startswith("text/plain") and text, text
        assert not twirp or resp.status_code in (401, 405), text


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    errors = ErrorLog()
    logger = logging.getLogger("aiohttp")
    logger.addHandler(errors)
    try:
        with background(build_app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
            target = Target(server, client, errors)
            target.reset()
            yield target
    finally:
        logger.removeHandler(errors)


# -- pieces ------------------------------------------------------------------------------------------------------
def _quoted(text: str) -> str:
    return json.dumps(text)  # a lone surrogate becomes a "\ud800" escape


ODD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "-0", "0.5", "-1", "1.0", "1e2"]
ODD_NUMBERS += [str(2**32), str(2**63), str(2**64), str(-(2**63) - 1), "1" + "0" * 400, "9" * 5000]
texts = st.text(alphabet=st.characters(codec="utf-16"), max_size=12)  # lone surrogates included
numbers = st.one_of(st.sampled_from(ODD_NUMBERS), st.integers().map(str), st.floats(allow_nan=False).map(repr))
numbers = numbers.map(lambda n: {"inf": "1e400", "-inf": "-1e400"}.get(n, n))
raw_strings = texts.map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"')  # raw surrogates: invalid UTF-8
scalars = st.one_of(
    st.sampled_from(["null", "true", "false", '""', '"NaN"', '"Infinity"', '"r1"']),
    numbers,
    texts.map(_quoted),
    raw_strings,
)
FIELDS = ["name", "room", "identity", "names", "empty_timeout", "departure_timeout", "max_participants", "metadata"]
FIELDS += ["egress", "agents", "tags", "room_preset", "sync_streams", "revoke_token_ts", "emptyTimeout", "nodeId"]
keys = st.one_of(st.sampled_from(FIELDS), texts).map(_quoted)
json_texts = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]")
        | st.lists(st.tuples(keys, inner), max_size=4).map(lambda kv: "{" + ",".join(f"{k}:{v}" for k, v in kv) + "}")
    ),
    max_leaves=12,
)
deep = st.tuples(st.integers(1, 200_000), st.sampled_from(["[", '{"a":'])).map(
    lambda t: t[1] * t[0] + ("1" if t[1] != "[" else "") + ("]" if t[1] == "[" else "}") * t[0]
)
valid_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
protobufs = st.one_of(
    st.builds(
        proto_room.CreateRoomRequest,
        name=valid_text,
        empty_timeout=st.integers(0, 2**32 - 1),
        max_participants=st.integers(0, 2**32 - 1),
        metadata=valid_text,
    ),
    st.builds(proto_room.ListRoomsRequest, names=st.lists(valid_text, max_size=3)),
    st.builds(proto_room.DeleteRoomRequest, room=valid_text),
    st.builds(proto_room.RoomParticipantIdentity, room=valid_text, identity=valid_text),
).map(lambda m: m.SerializeToString())
bodies = st.one_of(
    json_texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=64),
    protobufs,
    deep.map(str.encode),
    st.just(b""),
)
tokens = st.one_of(
    st.sampled_from([ADMIN, join_token("alice", "r1"), raw_token({"exp": 1}), "not-a-jwt", ""]),
    st.sampled_from([raw_token({"sub": "", "video": {"roomCreate": True, "roomList": True}})]),
    st.text(alphabet=st.characters(codec="latin-1", exclude_categories=("Cc",)), max_size=40),
)
header_values = st.binary(max_size=24).map(lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7F).strip())
content_types = st.one_of(
    st.sampled_from(["application/json", "application/protobuf", "application/json; charset=utf-8", "text/plain"]),
    header_values,
)
twirp_methods = st.one_of(st.sampled_from(sorted(METHODS) + sorted(UNIMPLEMENTED)), st.text(max_size=10))
url_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=8)  # httpx's limit


def _auth(token: str | None, via_query: bool) -> tuple[dict[str, str | bytes], dict[str, str]]:
    if token is None:
        return {}, {}
    if via_query:
        return {}, {"access_token": token}
    return {"Authorization": ("Bearer " + token).encode("latin-1").strip()}, {}  # h11 refuses edge whitespace


# -- the properties ---------------------------------------------------------------------------------------------
@FUZZ
@given(
    name=twirp_methods,
    body=bodies,
    content_type=content_types,
    token=st.none() | tokens,
    via_query=st.booleans(),
    method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE"]),
)
def test_twirp_any_body_any_token(
    target: Target, name: str, body: bytes, content_type: str | bytes, token: str | None, via_query: bool, method: str
) -> None:
    headers, query = _auth(token, via_query)
    url = httpx.URL(target.server.url + TWIRP + urllib.parse.quote(name, safe="")).copy_merge_params(query)
    target.check(method, str(url), body, {**headers, "Content-Type": content_type})


SEGMENTS = ["", "rtc", "validate", "twirp", "livekit.RoomService", "CreateRoom", "v1", "..", "%ff", "%00", "%2F"]
SEGMENTS += ["%ed%a0%80", "settings", "regions", "a b"]
paths = st.lists(st.one_of(st.sampled_from(SEGMENTS), url_text), min_size=1, max_size=5).map(
    lambda parts: "/" + "/".join(parts)
)
header_names = st.sampled_from(["User-Agent", "Content-Type", "Accept", "Origin", "Authorization", "Upgrade", "X-Fz"])


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS", "FOO"]),
    path=st.one_of(paths, st.sampled_from(["/", "/rtc", "/rtc/validate", TWIRP + "ListRooms"])),
    query=st.lists(
        st.tuples(st.sampled_from(["access_token", "auto_subscribe", "sdk", "reconnect"]) | url_text, url_text)
    ),
    headers=st.dictionaries(header_names, header_values, max_size=3),
    body=bodies,
)
def test_any_request_to_any_path(
    target: Target, method: str, path: str, query: list, headers: dict[str, str | bytes], body: bytes
) -> None:
    url = httpx.URL(target.server.url + path).copy_merge_params(query)  # absolute: "//x" stays a path
    target.check(method, str(url), body, headers)


@FUZZ
@given(token=tokens, via_query=st.booleans(), query=st.lists(st.tuples(url_text, url_text), max_size=3))
def test_rtc_validate_any_token(target: Target, token: str, via_query: bool, query: list) -> None:
    headers, token_query = _auth(token, via_query)
    url = httpx.URL(target.server.url + "/rtc/validate").copy_merge_params([*query, *token_query.items()])
    target.check("GET", str(url), b"", headers)


frames = st.one_of(
    st.tuples(st.just(websocket.ABNF.OPCODE_BINARY), st.binary(max_size=64)),
    st.tuples(st.just(websocket.ABNF.OPCODE_TEXT), json_texts.map(lambda t: t.encode("utf-8", "replace"))),
    st.tuples(st.just(websocket.ABNF.OPCODE_TEXT), deep.map(str.encode)),
    st.tuples(st.just(websocket.ABNF.OPCODE_TEXT), st.sampled_from([b'{"ping_req":{"timestamp":"NaN"}}'])),
)


@settings(FUZZ, max_examples=40)
@given(sent=st.lists(frames, min_size=1, max_size=4))
def test_rtc_frames_never_break_the_connection(target: Target, sent: list[tuple[int, bytes]]) -> None:
    """Undecodable signal requests are ignored (the signal protocol has no error reply): a ping still gets its
    pong afterwards, and the server logs no error."""
    ws = websocket.create_connection(ws_url(target.server), header=[f"Authorization: Bearer {join_token()}"], timeout=5)
    try:
        recv_kind(ws, "join")
        for opcode, payload in sent:
            ws.send(payload, opcode=opcode)
        ping = proto_rtc.SignalRequest(ping_req=proto_rtc.Ping(timestamp=42))
        ws.send(ping.SerializeToString(), opcode=websocket.ABNF.OPCODE_BINARY)
        assert recv_kind(ws, "pong_resp").pong_resp.last_ping_timestamp == 42
    finally:
        ws.close()
    assert not target.errors.records, target.errors.records
    target.reset()


@pytest.mark.parametrize("content_type", ["application/json", "application/protobuf", "text/plain"])
def test_oversize_bodies_are_refused_in_livekit_shape(target: Target, content_type: str) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": content_type}
    target.check("POST", TWIRP + "CreateRoom", b'{"name":"' + b"x" * (1 << 20) + b'"}', headers)
