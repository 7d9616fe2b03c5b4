"""Realtime over a raw websocket (websocket-client): the exact frames of docs/protocols.md §4, RLS on the fan-out,
filters, broadcast, presence, token refresh and expiry, idle and slow sockets, and the REST broadcast API."""

from __future__ import annotations

import itertools
import json
import re
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websocket

from harness.model import keys
from harness.procs.serving import BackgroundServer
from harness.refstack.region.realtime import HUB, channel_count, disconnect_all, subscriber_count
from harness.refstack.region.realtime.catalog import Table
from harness.refstack.region.realtime.filters import FilterError, FilterSubscribeError, FilterSyntaxError, parse
from harness.refstack.region.state import DB
from tests.refstack.region.conftest import MakeConversation, MakeUser, user_headers

Frame = dict[str, Any]
_client_msgs = itertools.count(1)
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def ws_url(server: BackgroundServer, apikey: str | None = keys.ANON_KEY, vsn: str | None = "1.0.0") -> str:
    query = "&".join(f"{k}={v}" for k, v in (("apikey", apikey), ("vsn", vsn)) if v is not None)
    return server.url.replace("http://", "ws://") + "/realtime/v1/websocket" + (f"?{query}" if query else "")


class Client:
    """A Phoenix vsn 1.0.0 client: records every frame it receives so tests can assert on exact sequences."""

    def __init__(self, server: BackgroundServer, apikey: str = keys.ANON_KEY, **options: Any) -> None:
        self.sock = websocket.create_connection(ws_url(server, apikey), timeout=5, **options)
        self.frames: list[Frame] = []
        self._refs = itertools.count(1)

    def send(
        self, topic: str, event: str, payload: dict[str, Any], ref: str | None = "auto", **extra: Any
    ) -> str | None:
        ref = str(next(self._refs)) if ref == "auto" else ref
        self.sock.send(json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref, **extra}))
        return ref

    def next(self, timeout_s: float = 5.0) -> Frame:
        self.sock.settimeout(timeout_s)
        text = self.sock.recv()
        assert isinstance(text, str), f"expected a text frame, got {text!r}"
        frame = json.loads(text)
        assert "join_ref" not in frame, f"outbound frames never carry join_ref: {frame}"
        self.frames.append(frame)
        return frame

    def until(self, predicate: Callable[[Frame], bool], timeout_s: float = 5.0) -> Frame:
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching frame within {timeout_s} s; got {self.frames}")
            frame = self.next(left)
            if predicate(frame):
                return frame

    def quiet(self, window_s: float = 0.3) -> list[Frame]:
        """Frames that arrive within `window_s` (used to prove that nothing more comes)."""
        got: list[Frame] = []
        deadline = time.monotonic() + window_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(self.next(left))
            except websocket.WebSocketTimeoutException:
                break
        return got

    def join(self, topic: str, config: dict[str, Any] | None = None, token: str | None = None) -> Frame:
        payload: dict[str, Any] = {"config": config or {}}
        if token is not None:
            payload["access_token"] = token
        ref = self.send(f"realtime:{topic}", "phx_join", payload)
        self.join_ref = ref
        return self.until(lambda f: f["event"] == "phx_reply" and f["ref"] == ref)

    def close(self) -> None:
        self.sock.close()


def sql(region: BackgroundServer, query: str, *args: Any) -> list[dict[str, Any]]:
    """Run one statement as the superuser, the way a migration, a trigger or psql writes (not through PostgREST)."""

    async def run() -> list[dict[str, Any]]:
        assert region.app is not None
        async with region.app[DB].as_admin() as conn:
            return [dict(r) for r in await conn.fetch(query, *args)]

    result = region.call(run)
    assert isinstance(result, list)
    return result


def published_table(region: BackgroundServer, name: str) -> Table:
    assert region.app is not None
    table = region.app[HUB].catalog.table("public", name)
    assert table is not None, f"{name} is not in publication supabase_realtime"
    return table


def column_names(region: BackgroundServer, table: str) -> list[str]:
    """The table's columns in order, from PostgreSQL's own catalog."""
    query = "select attname::text from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped"
    return [r["attname"] for r in sql(region, query + " order by attnum", f"public.{table}")]


def pg_config(*bindings: dict[str, Any]) -> dict[str, Any]:
    return {
        "broadcast": {"ack": False, "self": False},
        "presence": {"key": "", "enabled": False},
        "private": False,
        "postgres_changes": list(bindings),
    }


def send_message(server: BackgroundServer, token: str, sender: str, conversation: str, content: str) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/rest/v1/messages",
        headers={**user_headers(token), "Prefer": "return=representation"},
        json={
            "conversation_id": conversation,
            "sender_id": sender,
            "client_msg_id": f"c{next(_client_msgs)}",
            "content": content,
        },
        timeout=5,
    )
    assert response.status_code == 201, response.text
    return dict(response.json()[0])


def is_change(frame: Frame) -> bool:
    return bool(frame["event"] == "postgres_changes")


# -- handshake ----------------------------------------------------------------------------------------------------


def _expired_token() -> str:
    now = int(time.time())
    return keys.sign({"role": "authenticated", "sub": str(uuid.uuid4()), "exp": now - 10, "iat": now - 100})


@pytest.mark.parametrize(
    ("apikey", "message"),
    [
        (None, "API key is missing"),
        (_expired_token(), "Token has expired"),
        (keys.sign({"role": "anon"}), "Fields `role` and `exp` are required in JWT"),
        (keys.sign({"exp": int(time.time()) + 86400}), "Fields `role` and `exp` are required in JWT"),
        ("not-a-jwt", "The token provided is not a valid JWT"),
        (keys.sign({"role": "anon", "exp": int(time.time()) + 86400}, "x" * 40), "Failed to validate JWT signature"),
    ],
    ids=["missing", "expired", "no-exp", "no-role", "not-a-jwt", "bad-signature"],  # stable across processes
)
def test_handshake_failures_answer_401_with_realtime_json(
    region: BackgroundServer, apikey: str | None, message: str
) -> None:
    response = httpx.get(ws_url(region, apikey).replace("ws://", "http://"), timeout=5)
    assert response.status_code == 401
    assert response.json() == {"error": message}
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        websocket.create_connection(ws_url(region, apikey), timeout=5)
    assert caught.value.status_code == 401


def test_x_api_key_header_is_read_before_the_query_parameter(region: BackgroundServer) -> None:
    sock = websocket.create_connection(ws_url(region, "not-a-jwt"), header=[f"x-api-key: {keys.ANON_KEY}"], timeout=5)
    sock.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"}))
    assert json.loads(sock.recv())["payload"] == {"status": "ok", "response": {}}
    sock.close()


def test_unserved_vsn_is_a_403_and_plain_http_get_a_400_not_500(region: BackgroundServer) -> None:
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13"}
    upgrade["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ=="
    v3 = httpx.get(ws_url(region, vsn="3.0.0").replace("ws://", "http://"), headers=upgrade, timeout=5)
    assert (v3.status_code, v3.content) == (403, b"")  # Phoenix: no serializer matches the vsn
    plain = httpx.get(ws_url(region).replace("ws://", "http://"), timeout=5)
    assert plain.status_code == 400 and "websocket upgrade" in plain.json()["error"]


# -- phoenix protocol ---------------------------------------------------------------------------------------------


def test_heartbeat_is_answered_on_the_phoenix_topic_with_the_same_ref(region: BackgroundServer) -> None:
    client = Client(region)
    client.send("phoenix", "heartbeat", {}, ref="41")
    assert client.next() == {
        "topic": "phoenix",
        "event": "phx_reply",
        "payload": {"status": "ok", "response": {}},
        "ref": "41",
    }
    client.send("phoenix", "heartbeat", {}, ref=None)  # realtime-py sends its heartbeats with ref null
    assert client.next()["ref"] is None


def test_join_echoes_bindings_in_order_with_integer_ids_then_the_system_message(region: BackgroundServer) -> None:
    bindings = [
        {"event": "INSERT", "schema": "public", "table": "messages"},
        {"event": "UPDATE", "schema": "public", "table": "conversations", "filter": "title=eq.x"},
        {"event": "*", "schema": "public"},
    ]
    client = Client(region)
    reply = client.join("room1", pg_config(*bindings))
    assert reply["topic"] == "realtime:room1" and reply["payload"]["status"] == "ok"
    echoed = reply["payload"]["response"]["postgres_changes"]
    assert [{k: v for k, v in e.items() if k != "id"} for e in echoed] == bindings
    ids = [e["id"] for e in echoed]
    assert all(isinstance(i, int) and i > 0 for i in ids) and len(set(ids)) == 3
    assert client.next() == {
        "topic": "realtime:room1",
        "event": "system",
        "payload": {
            "channel": "room1",
            "extension": "postgres_changes",
            "status": "ok",
            "message": "Subscribed to PostgreSQL",
        },
        "ref": None,
    }


def test_join_without_bindings_replies_an_empty_list_and_no_system_message(region: BackgroundServer) -> None:
    client = Client(region)
    assert client.join("plain", {"broadcast": {"self": False}})["payload"] == {
        "status": "ok",
        "response": {"postgres_changes": []},
    }
    assert client.quiet() == []


def test_leave_replies_ok_then_phx_close_with_the_join_ref(region: BackgroundServer) -> None:
    client = Client(region)
    client.join("room2")
    join_ref = client.join_ref
    ref = client.send("realtime:room2", "phx_leave", {})
    assert client.next() == {
        "topic": "realtime:room2",
        "event": "phx_reply",
        "payload": {"status": "ok", "response": {}},
        "ref": ref,
    }
    assert client.next() == {"topic": "realtime:room2", "event": "phx_close", "payload": {}, "ref": join_ref}
    client.send("realtime:room2", "broadcast", {"type": "broadcast", "event": "e", "payload": {}})
    assert client.next()["payload"] == {"status": "error", "response": {"reason": "unmatched topic"}}


def test_push_to_a_topic_never_joined_is_an_unmatched_topic(region: BackgroundServer) -> None:
    client = Client(region)
    ref = client.send("realtime:nowhere", "broadcast", {"type": "broadcast", "event": "e", "payload": {}})
    assert client.next() == {
        "topic": "realtime:nowhere",
        "event": "phx_reply",
        "payload": {"status": "error", "response": {"reason": "unmatched topic"}},
        "ref": ref,
    }
    client.send("not-realtime", "phx_join", {})
    assert client.next()["payload"]["response"] == {"reason": "unmatched topic"}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"access_token": "not-a-jwt"}, "Unauthorized: The token provided is not a valid JWT"),
        ({"access_token": _expired_token()}, "InvalidJWTToken: Token has expired "),
        ({"user_token": keys.sign({"role": "anon"})}, "InvalidJWTToken: Fields `role` and `exp` are required in JWT"),
        ({"config": {"broadcast": "yes"}}, "InvalidJoinPayload: config.broadcast: unable to parse, expected a map"),
        ({"config": {"postgres_changes": {}}}, "InvalidJoinPayload: config.postgres_changes"),
    ],
)
def test_join_errors_name_the_code_and_reason(region: BackgroundServer, payload: dict[str, Any], reason: str) -> None:
    client = Client(region)
    ref = client.send("realtime:guarded", "phx_join", payload)
    reply = client.next()
    assert reply["ref"] == ref and reply["payload"]["status"] == "error"
    assert reply["payload"]["response"]["reason"].startswith(reason)


def test_sb_prefixed_access_tokens_are_ignored_in_favour_of_the_socket_token(region: BackgroundServer) -> None:
    client = Client(region)
    assert client.join("sb", token="sb_publishable_abc")["payload"]["status"] == "ok"


def test_a_binding_that_cannot_be_served_gets_a_postgres_changes_error(region: BackgroundServer) -> None:
    client = Client(region)
    reply = client.join("bad", pg_config({"event": "INSERT", "schema": "public", "table": "auth_users"}))
    assert reply["payload"]["status"] == "ok"
    system = client.next()
    assert system["event"] == "system" and system["ref"] is None
    assert system["payload"]["status"] == "error" and system["payload"]["extension"] == "postgres_changes"
    assert "auth_users" in system["payload"]["message"]


# -- postgres_changes ---------------------------------------------------------------------------------------------


def test_member_receives_an_insert_exactly_once_and_a_non_member_nothing(
    region: BackgroundServer, make_user: MakeUser, make_conversation: MakeConversation
) -> None:
    alice, alice_token, _ = make_user()
    bob, bob_token, _ = make_user()
    _, eve_token, _ = make_user()
    conversation = make_conversation(alice_token, [bob])
    binding = {"event": "INSERT", "schema": "public", "table": "messages"}
    bob_client, eve_client = Client(region), Client(region)
    # Two bindings that both match: still one frame, carrying both ids.
    reply = bob_client.join(
        "bob", pg_config(binding, {"event": "*", "schema": "public", "table": "messages"}), bob_token
    )
    ids = [b["id"] for b in reply["payload"]["response"]["postgres_changes"]]
    eve_client.join("eve", pg_config(binding), eve_token)
    bob_client.until(lambda f: f["event"] == "system")
    eve_client.until(lambda f: f["event"] == "system")

    row = send_message(region, alice_token, alice, conversation, "hello bob")

    event = bob_client.until(is_change)
    assert event["topic"] == "realtime:bob" and event["ref"] is None
    assert sorted(event["payload"]["ids"]) == sorted(ids)
    data = event["payload"]["data"]
    assert data["schema"] == "public" and data["table"] == "messages" and data["type"] == "INSERT"
    assert TIMESTAMP.match(data["commit_timestamp"]), data["commit_timestamp"]
    assert data["errors"] is None and "old_record" not in data
    assert data["record"] == row
    assert {"name": "id", "type": "uuid"} in data["columns"]
    assert [c["name"] for c in data["columns"]] == column_names(region, "messages")
    assert [f for f in bob_client.quiet() if is_change(f)] == []
    assert [f for f in eve_client.quiet() if is_change(f)] == []


def test_anon_socket_token_sees_no_app_rows_but_the_service_role_sees_all(
    region: BackgroundServer, make_user: MakeUser, make_conversation: MakeConversation
) -> None:
    alice, alice_token, _ = make_user()
    conversation = make_conversation(alice_token, [])
    binding = {"event": "INSERT", "schema": "public", "table": "messages"}
    anon, service = Client(region), Client(region, keys.SERVICE_ROLE_KEY)
    anon.join("a", pg_config(binding))
    service.join("s", pg_config(binding))
    send_message(region, alice_token, alice, conversation, "hi")
    assert service.until(is_change)["payload"]["data"]["record"]["content"] == "hi"
    assert [f for f in anon.quiet() if is_change(f)] == []


def test_update_and_delete_carry_only_the_primary_key_in_old_record(
    region: BackgroundServer, make_user: MakeUser, make_conversation: MakeConversation
) -> None:
    alice, alice_token, _ = make_user()
    conversation = make_conversation(alice_token, [])
    client = Client(region)
    client.join("ud", pg_config({"event": "*", "schema": "public", "table": "messages"}), alice_token)
    row = send_message(region, alice_token, alice, conversation, "v1")
    client.until(lambda f: is_change(f) and f["payload"]["data"]["type"] == "INSERT")

    headers = user_headers(alice_token)
    url = f"{region.url}/rest/v1/messages?id=eq.{row['id']}"
    assert httpx.patch(url, headers=headers, json={"content": "v2"}, timeout=5).status_code == 204
    update = client.until(is_change)["payload"]["data"]
    assert update["type"] == "UPDATE" and update["record"]["content"] == "v2"
    assert update["old_record"] == {"id": row["id"]}

    assert httpx.delete(url, headers=headers, timeout=5).status_code == 204
    delete = client.until(is_change)["payload"]["data"]
    assert delete["type"] == "DELETE" and delete["old_record"] == {"id": row["id"]} and "record" not in delete


def test_filters_select_rows_by_column_value(
    region: BackgroundServer, make_user: MakeUser, make_conversation: MakeConversation
) -> None:
    alice, alice_token, _ = make_user()
    first = make_conversation(alice_token, [])
    second = make_conversation(alice_token, [])
    binding = {"event": "INSERT", "schema": "public", "table": "messages"}
    only_first, both, not_first = Client(region), Client(region), Client(region)
    only_first.join("f1", pg_config({**binding, "filter": f"conversation_id=eq.{first}"}), alice_token)
    both.join("f2", pg_config({**binding, "filter": f"conversation_id=in.({first},{second})"}), alice_token)
    not_first.join("f3", pg_config({**binding, "filter": f"conversation_id=neq.{first}"}), alice_token)
    send_message(region, alice_token, alice, first, "to first")
    send_message(region, alice_token, alice, second, "to second")

    def contents(client: Client) -> list[str]:
        client.until(lambda f: is_change(f) and f["payload"]["data"]["record"]["content"] == "to second")
        return [f["payload"]["data"]["record"]["content"] for f in client.frames if is_change(f)]

    assert contents(both) == ["to first", "to second"]
    assert contents(not_first) == ["to second"]
    only_first.until(is_change)
    assert [f for f in only_first.quiet() if is_change(f)] == []


def test_filter_parsing_coerces_values_and_names_bad_input(region: BackgroundServer) -> None:
    messages, profiles = published_table(region, "messages"), published_table(region, "profiles")
    row = {"content": "m", "created_at": "2024-05-01T10:00:00.000000+00:00", "kind": "text"}
    assert parse("created_at=gt.2024-05-01T09:00:00Z", messages).matches(row)
    assert parse("created_at=lte.2024-05-01T10:00:00Z", messages).matches(row)
    assert not parse("created_at=lt.2024-05-01T10:00:00Z", messages).matches(row)
    assert parse("created_at=gte.2024-05-01T10:00:00+00:00", messages).matches(row)
    assert parse("kind=in.(text,image)", messages).matches(row)
    assert not parse("content=eq.m", messages).matches({"content": None})
    assert parse('kind=eq."text"', messages).matches(row)  # a quoted value loses its quotes, as in Realtime
    assert parse("   ", messages) is None  # an empty filter is no filter
    # Realtime's parser errors (parse_subscription_params), word for word:
    for text, reason in [
        ("subject=foo.hey", '["foo", "hey"]'),
        ("undefined", '["undefined"]'),
        ("username=eqx", '["eqx"]'),
        ("username=in.x", "`in` filter value must be wrapped by parentheses"),
    ]:
        with pytest.raises(FilterSyntaxError) as syntax:
            parse(text, profiles)
        assert str(syntax.value) == reason
    # What its subscription insert answers (realtime.subscription_check_filters, PostgreSQL's cast):
    with pytest.raises(FilterSubscribeError, match=r"^ERROR P0001 \(raise_exception\) invalid column for filter nope$"):
        parse("nope=eq.1", profiles)
    with pytest.raises(FilterSubscribeError, match='invalid input syntax for type uuid: "42"'):
        parse("id=eq.42", profiles)
    with pytest.raises(FilterSubscribeError, match=r"too many values for `in` filter\. Maximum 100$"):
        parse(f"kind=in.({','.join(map(str, range(101)))})", messages)
    # What the newest Realtime also takes and this stand-in names as not served:
    for text in ("username=like.x%", "username=not.eq.x", "username=eq.a,username=eq.b"):
        with pytest.raises(FilterError, match="not served by this stand-in"):
            parse(text, profiles)


def test_access_token_push_changes_who_the_channel_is_without_a_reply(
    region: BackgroundServer, make_user: MakeUser, make_conversation: MakeConversation
) -> None:
    alice, alice_token, _ = make_user()
    conversation = make_conversation(alice_token, [])
    client = Client(region)
    client.join("swap", pg_config({"event": "INSERT", "schema": "public", "table": "messages"}))  # as anon
    client.until(lambda f: f["event"] == "system")
    send_message(region, alice_token, alice, conversation, "unseen")
    client.send("realtime:swap", "access_token", {"access_token": alice_token})
    assert client.quiet() == []  # no reply to access_token, and anon saw nothing
    send_message(region, alice_token, alice, conversation, "seen")
    assert client.until(is_change)["payload"]["data"]["record"]["content"] == "seen"


def test_channel_token_expiry_sends_a_system_error_then_phx_close(region: BackgroundServer) -> None:
    now = int(time.time())
    short = keys.sign({"role": "authenticated", "sub": str(uuid.uuid4()), "exp": now + 1, "iat": now})
    client = Client(region)
    assert client.join("expiring", token=short)["payload"]["status"] == "ok"
    system = client.until(lambda f: f["event"] == "system", timeout_s=5)
    assert system["ref"] is None
    assert system["payload"]["status"] == "error" and system["payload"]["extension"] == "system"
    assert system["payload"]["channel"] == "expiring"
    assert system["payload"]["message"].startswith("Token has expired")
    assert client.next() == {"topic": "realtime:expiring", "event": "phx_close", "payload": {}, "ref": client.join_ref}


def test_service_insert_through_the_loop_reaches_a_service_subscriber(region: BackgroundServer) -> None:
    client = Client(region, keys.SERVICE_ROLE_KEY)
    client.join("svc", pg_config({"event": "INSERT", "schema": "public", "table": "profiles"}))
    profile_id = str(uuid.uuid4())
    # A user row made in SQL: its sign-up trigger inserts the profile (profiles.id references auth.users).
    sql(region, "insert into auth.users (id, email) values ($1, $2)", uuid.UUID(profile_id), f"{profile_id}@x.test")
    assert client.until(is_change)["payload"]["data"]["record"]["id"] == profile_id
    assert sql(region, "select id::text from profiles where id = $1", uuid.UUID(profile_id)) == [{"id": profile_id}]


def _async(fn: Callable[[], Any]) -> Callable[[], Any]:
    async def run() -> Any:
        return fn()

    return run


# -- broadcast and presence ---------------------------------------------------------------------------------------


def test_broadcast_reaches_others_and_self_only_when_asked_with_ack_replies(region: BackgroundServer) -> None:
    sender, other = Client(region), Client(region)
    sender.join("chat", {"broadcast": {"self": True, "ack": True}})
    other.join("chat", {"broadcast": {"self": False, "ack": False}})
    message = {"type": "broadcast", "event": "typing", "payload": {"who": "a"}}
    ref = sender.send("realtime:chat", "broadcast", message)
    pushed = {"topic": "realtime:chat", "event": "broadcast", "payload": message, "ref": None}
    assert other.next() == pushed
    got = [sender.next(), sender.next()]
    assert pushed in got and {"topic": "realtime:chat", "event": "phx_reply", "ref": ref,
                              "payload": {"status": "ok", "response": {}}} in got  # fmt: skip
    other.send("realtime:chat", "broadcast", {**message, "payload": {"who": "b"}})
    assert sender.next()["payload"]["payload"] == {"who": "b"}
    assert other.quiet() == []  # self:false and ack:false: nothing comes back


def test_presence_state_diff_and_leave_on_socket_close(region: BackgroundServer) -> None:
    config = {"presence": {"key": "alice", "enabled": True}}
    alice = Client(region)
    alice.join("lobby", config)
    assert alice.next() == {"topic": "realtime:lobby", "event": "presence_state", "payload": {}, "ref": None}
    ref = alice.send("realtime:lobby", "presence", {"event": "track", "payload": {"status": "online"}})
    got = [alice.next(), alice.next()]
    assert {
        "topic": "realtime:lobby",
        "event": "phx_reply",
        "payload": {"status": "ok", "response": {}},
        "ref": ref,
    } in got
    diff = next(f for f in got if f["event"] == "presence_diff")
    assert diff["ref"] is None and diff["payload"]["leaves"] == {}
    [meta] = diff["payload"]["joins"]["alice"]["metas"]
    assert meta["status"] == "online" and isinstance(meta["phx_ref"], str)

    bob = Client(region)
    bob.join("lobby", {"presence": {"key": "bob", "enabled": True}})
    assert bob.next()["payload"] == {"alice": {"metas": [meta]}}
    alice.close()
    leave = bob.until(lambda f: f["event"] == "presence_diff")
    assert leave["payload"] == {"joins": {}, "leaves": {"alice": {"metas": [meta]}}}


def test_tracking_again_replaces_the_meta(region: BackgroundServer) -> None:
    client = Client(region)
    client.join("p2", {"presence": {"key": "k", "enabled": True}})
    client.send("realtime:p2", "presence", {"event": "track", "payload": {"v": 1}})
    first = client.until(lambda f: f["event"] == "presence_diff")["payload"]["joins"]["k"]["metas"][0]
    client.send("realtime:p2", "presence", {"event": "track", "payload": {"v": 2}})
    diff = client.until(lambda f: f["event"] == "presence_diff")["payload"]
    assert diff["leaves"] == {"k": {"metas": [first]}}
    assert (
        diff["joins"]["k"]["metas"][0]["v"] == 2 and diff["joins"]["k"]["metas"][0]["phx_ref_prev"] == first["phx_ref"]
    )
    ref = client.send("realtime:p2", "presence", {"event": "dance", "payload": {}})
    assert client.until(lambda f: f["ref"] == ref)["payload"]["status"] == "error"


def test_rest_broadcast_bulk_answers_202_and_delivers(region: BackgroundServer) -> None:
    client = Client(region)
    client.join("news")
    body = {"messages": [{"topic": "news", "event": "headline", "payload": {"n": 1}}]}
    response = httpx.post(f"{region.url}/realtime/v1/api/broadcast", headers={"apikey": keys.ANON_KEY}, json=body)
    assert response.status_code == 202
    assert client.next()["payload"] == {"type": "broadcast", "event": "headline", "payload": {"n": 1}}
    assert httpx.post(f"{region.url}/realtime/v1/api/broadcast", json=body).status_code == 401
    bad = httpx.post(f"{region.url}/realtime/v1/api/broadcast", headers={"apikey": keys.ANON_KEY}, json={"m": 1})
    assert bad.status_code == 400 and "messages" in bad.json()["error"]


# -- socket lifecycle ---------------------------------------------------------------------------------------------


def test_idle_socket_is_closed_by_the_server(region: BackgroundServer) -> None:
    assert region.app is not None
    region.app[HUB].settings.idle_timeout_s = 0.3
    client = Client(region)
    client.sock.settimeout(5)
    opcode, _ = client.sock.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE


def test_disconnect_all_closes_every_socket_and_counts_follow(region: BackgroundServer) -> None:
    assert region.app is not None
    app = region.app
    clients = [Client(region) for _ in range(3)]
    clients[0].join("a")
    clients[1].join("b")
    assert region.call(_async(lambda: subscriber_count(app))) == 3
    assert region.call(_async(lambda: channel_count(app))) == 2
    assert region.call(lambda: disconnect_all(app)) == 3
    for client in clients:
        client.sock.settimeout(5)
        opcode, data = client.sock.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 1001
    deadline = time.monotonic() + 5
    while region.call(_async(lambda: subscriber_count(app))) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert region.call(_async(lambda: (subscriber_count(app), channel_count(app)))) == (0, 0)


def test_a_socket_that_stops_reading_is_dropped_instead_of_queueing_forever(region: BackgroundServer) -> None:
    assert region.app is not None
    hub = region.app[HUB]
    hub.settings.max_queued_frames = 4
    stuck = Client(region, sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    stuck.join("flood")
    sender = Client(region)
    sender.join("flood")
    big = {"type": "broadcast", "event": "blob", "payload": {"data": "x" * 256 * 1024}}
    for _ in range(200):  # bounded: 50 MB at most, far beyond any loopback socket buffer
        sender.send("realtime:flood", "broadcast", big)
        if hub.dropped_slow_sockets:
            break
        time.sleep(0.005)
    assert hub.dropped_slow_sockets == 1
    sender.send("phoenix", "heartbeat", {}, ref="hb")  # the server and the other socket carry on
    assert sender.until(lambda f: f["ref"] == "hb")["payload"]["status"] == "ok"


def test_disconnect_all_with_abort_drops_connections_without_a_close_frame(
    region: BackgroundServer, make_user: MakeUser
) -> None:
    assert region.app is not None
    app = region.app
    _, token, _ = make_user()
    client = Client(region)
    client.join("gone", pg_config({"event": "*", "schema": "public", "table": "messages"}), token)
    assert region.call(lambda: disconnect_all(app, abort=True)) == 1
    client.sock.settimeout(5)
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        while True:  # bounded by the socket timeout: frames already in flight, then the reset
            client.sock.recv_data(control_frame=True)
    deadline = time.monotonic() + 5
    while region.call(_async(lambda: subscriber_count(app))) and time.monotonic() < deadline:
        time.sleep(0.02)
    hub = app[HUB]
    assert region.call(_async(lambda: (subscriber_count(app), sum(t.size for t in hub.by_table.values())))) == (0, 0)


def test_odd_unicode_in_metadata_sent_through_rest_is_delivered_or_refused_never_lost(
    region: BackgroundServer, make_user: MakeUser, make_conversation: MakeConversation
) -> None:
    alice, alice_token, _ = make_user()
    conversation = make_conversation(alice_token, [])
    client = Client(region)
    client.join("odd", pg_config({"event": "INSERT", "schema": "public", "table": "messages"}), alice_token)
    client.until(lambda f: f["event"] == "system")
    headers = {**user_headers(alice_token), "Content-Type": "application/json"}
    odd = {"emoji": "👩‍👩‍👧\U0001f600", "rtl": "\u202eabc", "seps": "a\u2028b\u2029c", "bom": "\ufeff\u200b"}

    def send(client_msg_id: str, metadata_json: str) -> int:
        row = {"conversation_id": conversation, "sender_id": alice, "client_msg_id": client_msg_id}
        body = json.dumps(row)[:-1] + f',"metadata":{metadata_json}}}'  # raw, so escapes reach the server as sent
        return httpx.post(f"{region.url}/rest/v1/messages", headers=headers, content=body, timeout=5).status_code

    statuses = [send("u1", json.dumps(odd)), send("u2", '{"s":"\\ud800"}'), send("u3", '{"s":"\\u0000"}')]
    assert statuses[0] == 201 and all(400 <= s < 500 for s in statuses[1:]), statuses
    delivered = [f["payload"]["data"]["record"] for f in client.quiet(0.5) if is_change(f)]
    assert [r["client_msg_id"] for r in delivered] == ["u1"] and delivered[0]["metadata"] == odd
