"""Realtime's Phoenix vsn 2.0.0 beside 1.0.0 (docs/protocols.md §4): the serializer `?vsn=` picks, array frames with
join_ref, Realtime's binary user broadcasts, and the channel features (postgres_changes, presence, token refresh,
private channels) under 2.0.0. realtime-py 2.34 always asks for vsn 1.0.0, so 2.0.0 is spoken here over a raw
websocket, frame by frame, with a realtime-py (1.0.0) peer where the two meet."""

from __future__ import annotations

import asyncio
import itertools
import json
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websocket

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from tests.refstack.region.conftest import create_conversation, create_user, run_sql
from tests.refstack.region.test_realtime import Client, pg_config, send_message, ws_url

Frame = list[Any]

POLICY = """
create policy v2_room_read on realtime.messages for select to authenticated
  using (realtime.topic() like 'v2room:%')
"""


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    config = RegionConfig(data_dir=tmp_path_factory.mktemp("region"), bcrypt_cost=4)
    with background(lambda: build_app(config)) as server:
        run_sql(server.url, POLICY)
        yield server


class V2Client:
    """A Phoenix vsn 2.0.0 client: array frames out and in; binary frames are kept as bytes."""

    def __init__(self, server: BackgroundServer, apikey: str = keys.ANON_KEY, vsn: str = "2.0.0") -> None:
        self.sock = websocket.create_connection(ws_url(server, apikey, vsn), timeout=5)
        self._refs = itertools.count(1)
        self.frames: list[Frame | bytes] = []

    def send(self, join_ref: str | None, topic: str, event: str, payload: Any) -> str:
        ref = str(next(self._refs))
        self.sock.send(json.dumps([join_ref, ref, topic, event, payload]))
        return ref

    def next(self, timeout_s: float = 5.0) -> Frame | bytes:
        self.sock.settimeout(timeout_s)
        opcode, data = self.sock.recv_data()
        frame: Frame | bytes = data if opcode == websocket.ABNF.OPCODE_BINARY else json.loads(data)
        self.frames.append(frame)
        return frame

    def until(self, predicate: Callable[[Frame | bytes], bool], timeout_s: float = 5.0) -> Frame | bytes:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            frame = self.next(left)
            if predicate(frame):
                return frame
        raise AssertionError(f"no matching frame within {timeout_s} s; got {self.frames}")

    def quiet(self, window_s: float = 0.3) -> list[Frame | bytes]:
        got: list[Frame | bytes] = []
        deadline = time.monotonic() + window_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(self.next(left))
            except websocket.WebSocketTimeoutException:
                break
        return got

    def join(self, topic: str, config: dict[str, Any], token: str | None = None) -> tuple[str, Frame]:
        """Join `realtime:<topic>` with a fresh join_ref; returns it and the reply."""
        join_ref = str(next(self._refs) + 1000)
        payload: dict[str, Any] = {"config": config}
        if token is not None:
            payload["access_token"] = token
        ref = self.send(join_ref, f"realtime:{topic}", "phx_join", payload)
        reply = self.until(lambda f: isinstance(f, list) and f[3] == "phx_reply" and f[1] == ref)
        assert isinstance(reply, list)
        return join_ref, reply


def user_broadcast_push(join_ref: str, ref: str, topic: str, event: str, body: bytes, as_json: bool) -> bytes:
    """Realtime's kind-3 binary frame (a vsn 2.0.0 client's broadcast with a byte payload)."""
    parts = [p.encode() for p in (join_ref, ref, topic, event)]
    head = struct.pack("!BBBBBBB", 3, *(len(p) for p in parts), 0, 1 if as_json else 0)
    return head + b"".join(parts) + body


def user_broadcast(frame: bytes) -> tuple[str, str, bool, bytes]:
    """Decode a kind-4 frame the server sent: (topic, event, JSON?, payload); metadata must be empty."""
    kind, topic_size, event_size, metadata_size, encoding = struct.unpack("!BBBBB", frame[:5])
    assert kind == 4 and metadata_size == 0, frame[:5]
    topic = frame[5 : 5 + topic_size].decode()
    event = frame[5 + topic_size : 5 + topic_size + event_size].decode()
    return topic, event, encoding == 1, frame[5 + topic_size + event_size :]


def test_vsn_picks_the_serializer_as_phoenix_does_and_anything_else_is_a_403(region: BackgroundServer) -> None:
    for vsn in ("2.0.0", "2.0.7"):
        client = V2Client(region, vsn=vsn)
        ref = client.send(None, "phoenix", "heartbeat", {})
        assert client.next() == [None, ref, "phoenix", "phx_reply", {"status": "ok", "response": {}}]
    for vsn in (None, "1.0.0", "1.0.2"):
        sock = websocket.create_connection(ws_url(region, vsn=vsn), timeout=5)
        sock.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "7"}))
        assert json.loads(sock.recv()) == {
            "topic": "phoenix",
            "event": "phx_reply",
            "payload": {"status": "ok", "response": {}},
            "ref": "7",
        }
        sock.close()
    for vsn in ("3.0.0", "1.1.0", "2", "two", "2.0.0-rc.1"):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(ws_url(region, vsn=vsn), timeout=5)
        assert refused.value.status_code == 403, vsn


def test_join_reply_system_message_changes_and_leave_carry_the_join_ref(region: BackgroundServer) -> None:
    alice, alice_token, _ = create_user(region.url)
    conversation = create_conversation(region.url, alice_token, [])
    client = V2Client(region)
    binding = {
        "event": "INSERT",
        "schema": "public",
        "table": "messages",
        "filter": f"conversation_id=eq.{conversation}",
    }
    join_ref, reply = client.join("pg", pg_config(binding), alice_token)
    (echo,) = reply[4]["response"]["postgres_changes"]
    assert reply[:4] == [join_ref, reply[1], "realtime:pg", "phx_reply"] and reply[4]["status"] == "ok"
    assert {k: echo[k] for k in binding} == binding and isinstance(echo["id"], int)
    system = client.next()
    assert system == [
        join_ref,
        None,
        "realtime:pg",
        "system",
        {"channel": "pg", "extension": "postgres_changes", "status": "ok", "message": "Subscribed to PostgreSQL"},
    ]
    row = send_message(region, alice_token, alice, conversation, "over vsn 2")
    change = client.until(lambda f: isinstance(f, list) and f[3] == "postgres_changes")
    assert change[:4] == [None, None, "realtime:pg", "postgres_changes"]  # fastlane: no refs
    assert change[4]["ids"] == [echo["id"]] and change[4]["data"]["record"] == row
    ref = client.send(join_ref, "realtime:pg", "phx_leave", {})
    assert client.next() == [join_ref, ref, "realtime:pg", "phx_reply", {"status": "ok", "response": {}}]
    assert client.next() == [join_ref, join_ref, "realtime:pg", "phx_close", {}]
    ref = client.send(join_ref, "realtime:pg", "broadcast", {})
    assert client.next() == [
        None,
        ref,
        "realtime:pg",
        "phx_reply",
        {"status": "error", "response": {"reason": "unmatched topic"}},
    ]


def test_a_bad_filter_gets_realtimes_system_error_under_vsn2(region: BackgroundServer) -> None:
    client = V2Client(region)
    binding = {"event": "*", "schema": "public", "table": "messages", "filter": "content=foo.hey"}
    join_ref, reply = client.join("badfilter", pg_config(binding), keys.SERVICE_ROLE_KEY)
    assert reply[4]["status"] == "ok"
    system = client.next()
    assert system[:4] == [join_ref, None, "realtime:badfilter", "system"]
    assert system[4]["status"] == "error" and system[4]["extension"] == "postgres_changes"
    assert system[4]["message"] == 'Error parsing `filter` params: ["foo", "hey"]'
    binding = {"event": "INSERT", "schema": "public", "table": "messages", "filter": "nope=eq.1"}
    client.join("badcolumn", pg_config(binding), keys.SERVICE_ROLE_KEY)
    assert client.next()[4]["message"] == (
        "Unable to subscribe to changes with given parameters. An exception happened so please check your connect "
        'parameters: [event: "INSERT", schema: "public", table: "messages", filters: [{"nope", "eq", "1", false}], '
        "select: nil]. Exception: ERROR P0001 (raise_exception) invalid column for filter nope"
    )


def test_text_broadcasts_and_presence_cross_between_vsn1_and_vsn2_sockets(region: BackgroundServer) -> None:
    topic = f"mixed-{uuid.uuid4().hex[:6]}"
    config = {"broadcast": {"ack": True, "self": False}, "presence": {"key": "v2", "enabled": True}}
    v2 = V2Client(region)
    join_ref, _ = v2.join(topic, config)
    assert v2.next() == [join_ref, None, f"realtime:{topic}", "presence_state", {}]  # a channel push: join_ref
    v1 = Client(region)
    v1.join(topic, {"broadcast": {"ack": True}, "presence": {"key": "v1", "enabled": True}})
    v1.until(lambda f: f["event"] == "presence_state")

    message = {"type": "broadcast", "event": "hi", "payload": {"from": "v1"}}
    v1.send(f"realtime:{topic}", "broadcast", message)
    assert v2.until(lambda f: f[3] == "broadcast") == [None, None, f"realtime:{topic}", "broadcast", message]
    reply = {"type": "broadcast", "event": "hi", "payload": {"from": "v2"}}
    ref = v2.send(join_ref, f"realtime:{topic}", "broadcast", reply)
    assert v2.next() == [join_ref, ref, f"realtime:{topic}", "phx_reply", {"status": "ok", "response": {}}]  # ack
    assert v1.until(lambda f: f["event"] == "broadcast")["payload"] == reply

    ref = v2.send(
        join_ref, f"realtime:{topic}", "presence", {"type": "presence", "event": "track", "payload": {"n": 2}}
    )
    assert v2.until(lambda f: f[1] == ref) == [
        join_ref,
        ref,
        f"realtime:{topic}",
        "phx_reply",
        {"status": "ok", "response": {}},
    ]
    diff = next(f for f in v2.frames if isinstance(f, list) and f[3] == "presence_diff")  # came before the reply
    assert diff[:3] == [None, None, f"realtime:{topic}"] and list(diff[4]["joins"]) == ["v2"]
    assert v1.until(lambda f: f["event"] == "presence_diff")["payload"]["joins"]["v2"]["metas"][0]["n"] == 2


def test_binary_user_broadcasts_reach_vsn2_as_binary_and_vsn1_as_json_when_they_can(region: BackgroundServer) -> None:
    topic = f"bin-{uuid.uuid4().hex[:6]}"
    config = {"broadcast": {"ack": True, "self": False}}
    sender, receiver = V2Client(region), V2Client(region)
    join_ref, _ = sender.join(topic, config)
    receiver.join(topic, config)
    v1 = Client(region)
    v1.join(topic, config)

    frame = user_broadcast_push(join_ref, "50", f"realtime:{topic}", "cursor", b'{"x":1,"y":2}', as_json=True)
    sender.sock.send_binary(frame)
    assert sender.next() == [join_ref, "50", f"realtime:{topic}", "phx_reply", {"status": "ok", "response": {}}]
    got = receiver.next()
    assert isinstance(got, bytes) and user_broadcast(got) == (f"realtime:{topic}", "cursor", True, b'{"x":1,"y":2}')
    assert v1.until(lambda f: f["event"] == "broadcast")["payload"] == {
        "event": "cursor",
        "payload": {"x": 1, "y": 2},
        "type": "broadcast",
    }

    raw = bytes(range(256))
    sender.sock.send_binary(user_broadcast_push(join_ref, "51", f"realtime:{topic}", "blob", raw, as_json=False))
    got = receiver.next()
    assert isinstance(got, bytes) and user_broadcast(got) == (f"realtime:{topic}", "blob", False, raw)
    assert v1.quiet() == []  # a vsn 1.0.0 socket cannot carry bytes: it gets nothing

    headers = {"apikey": keys.ANON_KEY, "Content-Type": "application/octet-stream"}
    url = f"{region.url}/realtime/v1/api/broadcast/{topic}/events/upload"
    assert httpx.post(url, headers=headers, content=b"\x00\xffrest", timeout=5).status_code == 202
    got = receiver.until(lambda f: isinstance(f, bytes))
    assert isinstance(got, bytes) and user_broadcast(got) == (f"realtime:{topic}", "upload", False, b"\x00\xffrest")
    json_url = f"{region.url}/realtime/v1/api/broadcast/{topic}/events/note"
    assert httpx.post(json_url, headers={"apikey": keys.ANON_KEY}, json={"a": [1]}, timeout=5).status_code == 202
    got = receiver.until(lambda f: isinstance(f, bytes))
    assert isinstance(got, bytes) and user_broadcast(got) == (f"realtime:{topic}", "note", True, b'{"a":[1]}')
    assert v1.until(lambda f: f["event"] == "broadcast")["payload"] == {
        "event": "note",
        "payload": {"a": [1]},
        "type": "broadcast",
    }


def test_bad_vsn2_frames_get_an_error_reply_or_close_the_socket(region: BackgroundServer) -> None:
    client = V2Client(region)
    ref = client.send(None, "realtime:x", "phx_join", ["not", "an", "object"])
    assert client.next() == [None, ref, "realtime:x", "phx_reply", {
        "status": "error",
        "response": {"reason": "MalformedMessage: payload must be a JSON object"},
    }]  # fmt: skip
    client.sock.send_binary(user_broadcast_push("1", "9", "realtime:x", "e", b"{not json", as_json=True))
    error = client.next()
    assert error[:4] == [None, "9", "realtime:x", "phx_reply"] and error[4]["status"] == "error"
    for bad in (json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"}), b"\x00\x01"):
        sock = V2Client(region).sock
        sock.send_binary(bad) if isinstance(bad, bytes) else sock.send(bad)
        opcode, data = sock.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE and struct.unpack("!H", data[:2])[0] == 1007


def test_access_token_refresh_and_expiry_under_vsn2(region: BackgroundServer) -> None:
    now = int(time.time())
    short = keys.sign({"role": "authenticated", "sub": str(uuid.uuid4()), "exp": now + 1, "iat": now})
    fresh = keys.sign({"role": "authenticated", "sub": str(uuid.uuid4()), "exp": now + 3600, "iat": now})
    client = V2Client(region)
    join_ref, _ = client.join("refresh", {}, short)
    client.send(join_ref, "realtime:refresh", "access_token", {"access_token": fresh})
    assert client.quiet(1.5) == []  # no reply; the new token's claims keep the channel past the old expiry
    client.send(join_ref, "realtime:refresh", "access_token", {"access_token": "not-a-jwt"})
    assert client.next() == [join_ref, None, "realtime:refresh", "system", {
        "channel": "refresh", "extension": "system", "status": "error",
        "message": "The token provided is not a valid JWT",
    }]  # fmt: skip
    assert client.next() == [join_ref, join_ref, "realtime:refresh", "phx_close", {}]


def test_private_channels_are_authorised_by_rls_under_vsn2(region: BackgroundServer) -> None:
    _, token, _ = create_user(region.url)
    client = V2Client(region)
    join_ref, reply = client.join("secret-v2", {"private": True})  # anon: no policy
    assert reply[0] == join_ref and reply[4] == {
        "status": "error",
        "response": {"reason": "Unauthorized: You do not have permissions to read from this Channel topic: secret-v2"},
    }
    join_ref, reply = client.join("v2room:1", {"private": True}, token)
    assert reply[0] == join_ref and reply[4] == {"status": "ok", "response": {"postgres_changes": []}}


def test_realtime_py_on_vsn1_hears_a_vsn2_client(region: BackgroundServer) -> None:
    """The official client (vsn 1.0.0) and a vsn 2.0.0 socket on one topic."""
    from realtime import AsyncRealtimeClient

    topic = f"py-{uuid.uuid4().hex[:6]}"

    async def run() -> list[dict[str, Any]]:
        client = AsyncRealtimeClient(f"{region.url}/realtime/v1", keys.ANON_KEY)
        await client.connect()
        got: list[dict[str, Any]] = []
        joined = asyncio.Event()
        channel = client.channel(topic)
        channel.on_broadcast("ping", got.append)
        await channel.subscribe(lambda state, _err: joined.set() if state.value == "SUBSCRIBED" else None)
        await asyncio.wait_for(joined.wait(), 5)
        v2 = V2Client(region)
        join_ref, _ = v2.join(topic, {})
        v2.send(join_ref, f"realtime:{topic}", "broadcast", {"type": "broadcast", "event": "ping", "payload": {"v": 2}})
        frame = user_broadcast_push(join_ref, "9", f"realtime:{topic}", "ping", b'{"v":"bin"}', as_json=True)
        v2.sock.send_binary(frame)
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await client.close()
        return got

    got = asyncio.run(run())
    assert [m["payload"] for m in got] == [{"v": 2}, {"v": "bin"}]
