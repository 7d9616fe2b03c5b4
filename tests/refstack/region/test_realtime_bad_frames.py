"""A client frame Realtime cannot take is answered, never dropped in silence (issue 14 items 4 and 9):

    a frame with a topic and ref it can answer on, but a body no JSON decoder of Phoenix takes (NaN, Infinity,
    a lone surrogate, nesting too deep, a payload that is not an object)      → phx_reply error on that ref
    a frame with nothing to answer on (not JSON, not an object, no topic)      → the socket closes with 1007,
                                                                                 as Phoenix's socket process dies
    text that is not UTF-8                                                     → closed with 1007 too

A refused frame reaches no other socket, and the socket that sent one (when answered) keeps working. And a row
inserted with odd metadata is either refused at insert or delivered, never lost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websocket

from harness.model import keys, strict_json
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from tests.refstack.region.conftest import create_conversation, create_user, user_headers
from tests.refstack.region.test_realtime import pg_config

TOPIC = "realtime:bad-frames"
INVALID_TEXT = 1007


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    with background(build_app) as srv:
        yield srv


def _connect(server: BackgroundServer) -> websocket.WebSocket:
    url = server.url.replace("http://", "ws://") + f"/realtime/v1/websocket?apikey={keys.ANON_KEY}&vsn=1.0.0"
    return websocket.create_connection(url, timeout=5)


def _joined(server: BackgroundServer) -> websocket.WebSocket:
    sock = _connect(server)
    sock.send(json.dumps({"topic": TOPIC, "event": "phx_join", "ref": "j", "payload": {"config": {}}}))
    while json.loads(sock.recv()).get("ref") != "j":
        pass
    return sock


def _frames_until_heartbeat(sock: websocket.WebSocket) -> list[dict[str, Any]]:
    """Send a heartbeat and return every frame received before its reply (bounded)."""
    sock.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "hb"}))
    seen = []
    for _ in range(100):
        frame = json.loads(sock.recv())
        if frame["topic"] == "phoenix" and frame["ref"] == "hb":
            return seen
        seen.append(frame)
    raise AssertionError(f"no heartbeat reply among {seen}")


def _broadcast(payload_json: str) -> str:
    head = f'{{"topic":"{TOPIC}","event":"broadcast","ref":"bad","payload":'
    return head + '{"type":"broadcast","event":"e","payload":' + payload_json + "}}"


ANSWERABLE = {
    "NaN": _broadcast('{"n":NaN}'),
    "Infinity": _broadcast('{"n":Infinity}'),
    "-Infinity": _broadcast('{"n":-Infinity}'),
    "float beyond a double": _broadcast('{"n":1e400}'),
    "lone surrogate": _broadcast('{"s":"\\ud800"}'),
    "nested 101 deep": _broadcast('{"d":' + "[" * 100 + "]" * 100 + "}"),
    "payload not an object": f'{{"topic":"{TOPIC}","event":"broadcast","ref":"bad","payload":[1]}}',
}


@pytest.mark.parametrize("name", list(ANSWERABLE))
def test_an_answerable_bad_frame_gets_a_phx_reply_error_and_reaches_no_one(server: BackgroundServer, name: str) -> None:
    sender, listener = _joined(server), _joined(server)
    try:
        sender.send(ANSWERABLE[name])
        replies = _frames_until_heartbeat(sender)
        assert len(replies) == 1, replies
        [reply] = replies
        assert reply["topic"] == TOPIC and reply["event"] == "phx_reply" and reply["ref"] == "bad", reply
        assert reply["payload"]["status"] == "error" and reply["payload"]["response"]["reason"], reply
        assert "join_ref" not in reply
        assert _frames_until_heartbeat(listener) == []
    finally:
        sender.close()
        listener.close()


UNANSWERABLE = {
    "not JSON": "hello",
    "truncated JSON": '{"topic":"realtime:x","event":"broadcast"',
    "a JSON array": '["1","1","realtime:x","phx_join",{}]',  # vsn 2.0.0's shape on a 1.0.0 socket
    "no topic": '{"event":"heartbeat","payload":{},"ref":"1"}',
    "topic not a string": '{"topic":1,"event":"heartbeat","payload":{},"ref":"1"}',
    "NaN with no topic": '{"topic":NaN,"event":"heartbeat","ref":"1"}',
    "lone surrogate in the topic": '{"topic":"realtime:\\ud800","event":"phx_join","payload":{},"ref":"1"}',
    "100,000 deep": "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("name", list(UNANSWERABLE))
def test_a_frame_with_nothing_to_answer_on_closes_the_socket_with_1007(server: BackgroundServer, name: str) -> None:
    sock = _connect(server)
    try:
        sock.send(UNANSWERABLE[name])
        opcode, data = sock.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE, (opcode, data)
        assert int.from_bytes(data[:2], "big") == INVALID_TEXT, data
    finally:
        sock.close()
    assert _frames_until_heartbeat(_joined(server)) == []  # the server serves on


def test_text_that_is_not_utf8_closes_with_1007(server: BackgroundServer) -> None:
    sock = _connect(server)
    try:
        sock.send(
            b'{"topic":"phoenix","event":"heartbeat","payload":{"x":"\xff"},"ref":"1"}', websocket.ABNF.OPCODE_TEXT
        )
        opcode, data = sock.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2], "big") == INVALID_TEXT, data
    finally:
        sock.close()


def test_a_binary_frame_is_decoded_as_json_like_phoenix_v1_does(server: BackgroundServer) -> None:
    """Phoenix's V1 serializer decodes a frame's bytes as JSON whatever its opcode."""
    sock = _connect(server)
    try:
        sock.send_binary(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "bin"}).encode())
        assert json.loads(sock.recv())["ref"] == "bin"
        sock.send_binary(b"\x00\x01not json")
        opcode, data = sock.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2], "big") == INVALID_TEXT, data
    finally:
        sock.close()


# -- rows: an insert with odd metadata is refused at insert or delivered, never lost ----------------------------
ODD_METADATA = {
    "lone surrogate": '{"s":"\\ud800"}',
    "NaN": '{"n":NaN}',
    "NUL": '{"nul":"a\\u0000b"}',
    "nested 600 deep": '{"d":' + "[" * 599 + "]" * 599 + "}",
    "float beyond a double": '{"big":1e400}',
    "5,000-digit number": '{"huge":1e5000}',
    "nested 505 deep": '{"d":' + "[" * 504 + "]" * 504 + "}",
    "emoji and separators": '{"e":"\\ud83d\\ude00 a\\u2028b"}',
}


def test_an_insert_with_odd_metadata_is_refused_at_insert_or_delivered(server: BackgroundServer) -> None:
    """What PostgREST and Postgres take, Realtime delivers, as strict JSON; nothing taken goes missing."""
    user_id, token, _ = create_user(server.url)
    conversation = create_conversation(server.url, token, [])
    sock = _connect(server)
    try:
        join = {
            "config": pg_config({"event": "INSERT", "schema": "public", "table": "messages"}),
            "access_token": token,
        }
        sock.send(json.dumps({"topic": "realtime:rows", "event": "phx_join", "ref": "j", "payload": join}))
        while strict_json.loads(sock.recv()).get("event") != "system":  # subscribed to PostgreSQL
            pass
        delivered, refused = [], []
        for name, metadata in ODD_METADATA.items():
            body = (
                f'{{"conversation_id":"{conversation}","sender_id":"{user_id}","client_msg_id":"{name}",'
                f'"content":"odd","metadata":{metadata}}}'
            )
            response = httpx.post(
                f"{server.url}/rest/v1/messages",
                content=body.encode("utf-8", "surrogatepass"),
                headers={**user_headers(token), "Content-Type": "application/json"},
                timeout=10,
            )
            assert response.status_code in (201, 400), (name, response.text)
            (delivered if response.status_code == 201 else refused).append(name)
        for _ in range(100):  # bounded: every accepted row's event, each frame strict JSON
            frame = strict_json.loads(sock.recv(), max_depth=1000)
            if frame["event"] == "postgres_changes":
                delivered.remove(frame["payload"]["data"]["record"]["client_msg_id"])
            if not delivered:
                break
        assert delivered == []
        assert sorted(refused) == ["NUL", "NaN", "lone surrogate", "nested 600 deep"]
    finally:
        sock.close()
