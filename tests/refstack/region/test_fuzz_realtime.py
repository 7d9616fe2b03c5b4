"""Fuzzing Realtime (hypothesis, bounded): random text, binary and JSON frames (strings with lone surrogates too),
Phoenix-shaped messages with odd fields, and odd handshakes. The server must stay up, a socket either carries on or
closes cleanly, and a handshake never gets a 500. Then the named hazards: lone surrogates and deep JSON in
broadcasts, presence and the REST broadcast API never reach (or break) another socket."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.model import keys, strict_json
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from tests.refstack import fuzzing

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    with background(build_app) as srv:
        yield srv


@pytest.fixture(autouse=True)
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A bug reached by a fuzz frame shows up as an ERROR log from the handler (or aiohttp): there must be none."""
    with caplog.at_level(logging.ERROR):
        yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith(("harness", "aiohttp"))]
    assert errors == []


def _ws_url(server: BackgroundServer, query: str = f"apikey={keys.ANON_KEY}&vsn=1.0.0") -> str:
    return server.url.replace("http://", "ws://") + "/realtime/v1/websocket?" + query


def _heartbeat_answers(sock: websocket.WebSocket) -> bool:
    """True if the socket still works (answers a heartbeat); False if the server closed it cleanly."""
    try:
        sock.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "probe"}))
        for _ in range(500):  # bounded: skip pushes and replies the fuzz frames caused
            text = sock.recv()
            if not text:
                return False
            frame = json.loads(text)
            assert "join_ref" not in frame
            if frame.get("ref") == "probe":
                return bool(frame["payload"] == {"status": "ok", "response": {}})
        raise AssertionError("no heartbeat reply among 500 frames")
    except (websocket.WebSocketConnectionClosedException, ConnectionError):
        return False


any_text = st.text(max_size=20) | st.text(st.characters(exclude_categories=()), max_size=8)
"""Ordinary text, and text with any code point including lone surrogates (json.dumps escapes them: \\ud800)."""
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
topics = st.sampled_from(["phoenix", "realtime:", "realtime:fuzz", "realtime:other", "x"]) | st.text(max_size=16)
events = st.sampled_from(["phx_join", "phx_leave", "heartbeat", "broadcast", "presence", "access_token", "zzz"])
configs = st.fixed_dictionaries(
    {},
    optional={
        "broadcast": st.dictionaries(st.sampled_from(["ack", "self"]), json_values, max_size=2) | json_values,
        "presence": st.dictionaries(st.sampled_from(["key", "enabled"]), json_values, max_size=2) | json_values,
        "private": json_values,
        "postgres_changes": st.lists(
            st.dictionaries(st.sampled_from(["event", "schema", "table", "filter"]), json_values, max_size=4)
            | json_values,
            max_size=3,
        )
        | json_values,
    },
)
payloads = (
    st.fixed_dictionaries(
        {},
        optional={
            "config": configs,
            "access_token": st.sampled_from([keys.ANON_KEY, "sb_x", "bad", ""]) | json_values,
            "event": st.sampled_from(["track", "untrack", "typing"]) | json_values,
            "type": st.just("broadcast"),
            "payload": json_values,
        },
    )
    | json_values
)
phoenix_frames = st.fixed_dictionaries(
    {"topic": topics | json_values, "event": events | json_values},
    optional={"payload": payloads, "ref": st.none() | st.text(max_size=4) | json_values, "join_ref": json_values},
).map(json.dumps)
frames = st.lists(
    st.one_of(
        phoenix_frames,
        json_values.map(json.dumps),
        st.text(max_size=200),
        st.binary(max_size=200),
    ),
    min_size=1,
    max_size=12,
)


@FUZZ
@given(batch=frames)
def test_random_frames_never_break_the_server(server: BackgroundServer, batch: list[Any]) -> None:
    sock = websocket.create_connection(_ws_url(server), timeout=5)
    try:
        for item in batch:
            if isinstance(item, bytes):
                sock.send_binary(item)
            else:
                sock.send(item)
        _heartbeat_answers(sock)  # either answered or closed cleanly; a hang fails on the 5 s timeout
    finally:
        sock.close()
    fresh = websocket.create_connection(_ws_url(server), timeout=5)
    try:
        assert _heartbeat_answers(fresh), "the server must keep serving new sockets"
    finally:
        fresh.close()


query_values = st.text(max_size=40) | st.sampled_from([keys.ANON_KEY, keys.SERVICE_ROLE_KEY, "1.0.0", "2.0.0"])


@FUZZ
@given(
    params=st.dictionaries(st.sampled_from(["apikey", "vsn", "log_level", "x"]), query_values, max_size=3),
    header=st.none() | query_values,
    upgrade=st.booleans(),
)
def test_odd_handshakes_never_get_a_500(
    server: BackgroundServer, params: dict[str, str], header: str | None, upgrade: bool
) -> None:
    headers = {}
    if header is not None and header.isascii() and header.isprintable():
        headers["x-api-key"] = header
    if upgrade:
        headers.update({"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13"})
        headers["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ=="
    url = server.url + "/realtime/v1/websocket"
    with httpx.Client(timeout=5) as client:
        try:
            with client.stream("GET", url, params=params, headers=headers) as response:
                assert response.status_code in (101, 400, 401, 403), response.status_code  # 403: a vsn not served
        except httpx.RemoteProtocolError:
            pass  # a 101 upgrade that httpx does not speak, closed by the client side


def _broadcast(payload_json: str, ref: str = "b") -> str:
    return (
        '{"topic":"realtime:hazard","event":"broadcast","payload":{"type":"broadcast","event":"e","payload":'
        + payload_json
        + '},"ref":"'
        + ref
        + '"}'
    )


def _joined(server: BackgroundServer, presence_key: str | None = None) -> websocket.WebSocket:
    sock = websocket.create_connection(_ws_url(server), timeout=5)
    config: dict[str, Any] = {"broadcast": {"self": False}}
    if presence_key is not None:
        config["presence"] = {"key": presence_key, "enabled": True}
    sock.send(json.dumps({"topic": "realtime:hazard", "event": "phx_join", "payload": {"config": config}, "ref": "j"}))
    while json.loads(sock.recv()).get("ref") != "j":
        pass
    return sock


def _events(sock: websocket.WebSocket, window_s: float = 0.3) -> list[dict[str, Any]]:
    sock.settimeout(window_s)
    got = []
    try:
        while True:
            got.append(json.loads(sock.recv()))
    except websocket.WebSocketTimeoutException:
        return got


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "payload_json",
    ['{"s":"\\ud800"}', '{"s":"x\\udfff"}', '{"\\udc00":1}', f'{{"d":{_nested(101)}}}', f'{{"d":{_nested(990)}}}'],
    ids=["lone-high-surrogate", "lone-low-surrogate", "surrogate-key", "depth-101", "depth-990"],
)
def test_a_broadcast_no_socket_could_carry_is_refused_and_the_next_one_arrives(
    server: BackgroundServer, payload_json: str
) -> None:
    sender, listener = _joined(server), _joined(server)
    try:
        sender.send(_broadcast(payload_json))
        sender.send(_broadcast('{"s":"fine \\ud83d\\ude00","d":' + _nested(90) + "}"))
        [event] = _events(listener)
        assert event["payload"]["payload"]["s"] == "fine \U0001f600"
        assert _heartbeat_answers(sender) and _heartbeat_answers(listener)
    finally:
        sender.close()
        listener.close()


def test_deep_presence_metas_are_refused_and_leaving_still_works(server: BackgroundServer) -> None:
    tracker, watcher = _joined(server, "tracker"), _joined(server, "watcher")
    try:
        for depth in (101, 960, 990):
            meta = f'{{"d":{_nested(depth)}}}'
            tracker.send(
                '{"topic":"realtime:hazard","event":"presence","payload":{"event":"track","payload":' + meta + "}}"
            )
        tracker.send(json.dumps({"topic": "realtime:hazard", "event": "presence", "ref": "t",
                                 "payload": {"event": "track", "payload": {"ok": True}}}))  # fmt: skip
        diffs = [e for e in _events(watcher) if e["event"] == "presence_diff"]
        assert [d["payload"]["joins"]["tracker"]["metas"][0]["ok"] for d in diffs] == [True]
    finally:
        tracker.close()
    leaves = [e for e in _events(watcher) if e["event"] == "presence_diff"]
    assert list(leaves[0]["payload"]["leaves"]) == ["tracker"]
    watcher.close()


@pytest.mark.parametrize(
    "body", [b'{"messages":[{"topic":"t","event":"e","payload":{"s":"\\ud800"}}]}', _nested(5000).encode()]
)
def test_the_rest_broadcast_api_refuses_what_no_socket_could_carry(server: BackgroundServer, body: bytes) -> None:
    headers = {"apikey": keys.ANON_KEY, "Content-Type": "application/json"}
    bulk = httpx.post(f"{server.url}/realtime/v1/api/broadcast", headers=headers, content=body, timeout=5)
    assert bulk.status_code == 400, bulk.text
    one = httpx.post(f"{server.url}/realtime/v1/api/broadcast/t/events/e", headers=headers, content=body, timeout=5)
    assert one.status_code == 400 and "JSON" in one.json()["error"]


def _answer_or_close(sock: websocket.WebSocket, ref: str) -> tuple[list[dict[str, Any]], int | None]:
    """Frames up to the reply to a heartbeat sent after the frame under test, or the close code if the server
    closed the socket instead (bounded)."""
    try:
        sock.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": ref}))
        seen = []
        for _ in range(200):
            opcode, data = sock.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return seen, int.from_bytes(data[:2], "big")
            frame = json.loads(data)
            if frame["topic"] == "phoenix" and frame["ref"] == ref:
                return seen, None
            seen.append(frame)
        raise AssertionError(f"no heartbeat reply among {seen}")
    except (websocket.WebSocketConnectionClosedException, ConnectionError, BrokenPipeError):
        return [], -1


@FUZZ
@given(
    where=st.sampled_from(["payload", "topic", "ref", "event"]),
    body=st.data(),
)
def test_a_frame_no_strict_parser_takes_is_answered_or_closes_the_socket(
    server: BackgroundServer, where: str, body: st.DataObject
) -> None:
    """Never dropped in silence: a phx_reply error on its ref when it names a topic, else a 1007 close."""
    fields = {
        "topic": "realtime:hazard",
        "event": "broadcast",
        "ref": "h",
        "payload": {"type": "broadcast", "event": "e"},
    }
    del fields[where]
    text = body.draw(fuzzing.hazard_json(fields)).decode("utf-8", "replace").replace('"hazard":', f'"{where}":', 1)
    sender, listener = _joined(server), _joined(server)
    try:
        sender.send(text)
        seen, closed = _answer_or_close(sender, "probe")
        # Anything the frame broadcast was queued to the listener before it reads this heartbeat.
        heard, _ = _answer_or_close(listener, "probe")
        try:
            strict_json.loads(text, max_depth=100)
        except strict_json.JsonBodyError:
            replies = [f for f in seen if f["event"] == "phx_reply" and f["payload"]["status"] == "error"]
            assert closed == 1007 or replies, (text[:200], seen, closed)
            assert [f for f in heard if f["event"] == "broadcast"] == [], heard
    finally:
        sender.close()
        listener.close()


@FUZZ
@given(body=fuzzing.any_body({"messages": [{"topic": "hazard", "event": "e", "payload": {}}]}), bulk=st.booleans())
def test_the_rest_broadcast_api_refuses_bodies_no_strict_parser_takes(
    server: BackgroundServer, body: bytes, bulk: bool
) -> None:
    path = "/realtime/v1/api/broadcast" if bulk else "/realtime/v1/api/broadcast/hazard/events/e"
    headers = {"apikey": keys.ANON_KEY, "Content-Type": "application/json"}
    response = httpx.post(server.url + path, headers=headers, content=body, timeout=10)
    assert response.status_code in (202, 400), response.text
    try:
        strict_json.loads(body or b"null", max_depth=100)
    except strict_json.JsonBodyError:
        assert response.status_code == 400 and "JSON" in response.json()["error"], response.text
