"""The `/rtc` signalling websocket and `/rtc/validate` (harness/refstack/livekit/rtc.py), driven by
websocket-client with tokens minted by livekit-api, frames decoded with livekit-protocol."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import websocket
from livekit import api
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc
from lk_helpers import (
    connect,
    join_token,
    leave_request,
    next_frame,
    ping_request,
    raw_token,
    recv_close_code,
    recv_kind,
    recv_signal,
    room_api,
)

from harness.procs.serving import BackgroundServer

JOINED = proto_models.ParticipantInfo.JOINED
DISCONNECTED = proto_models.ParticipantInfo.DISCONNECTED


def test_first_frame_is_a_binary_join_response(server: BackgroundServer) -> None:
    ws = connect(server, join_token("alice", "standup"))
    try:
        response = recv_signal(ws)
    finally:
        ws.close()
    assert response.WhichOneof("message") == "join"
    join = response.join
    assert join.room.name == "standup" and join.room.sid.startswith("RM_")
    me = join.participant
    assert me.identity == "alice" and me.sid.startswith("PA_") and me.state == JOINED
    assert me.joined_at > 0 and me.region == "ap-southeast-1"
    assert list(join.other_participants) == []
    assert (join.ping_timeout, join.ping_interval) == (15, 5)
    info = join.server_info
    assert info.edition == proto_models.ServerInfo.Standard and info.version and info.protocol > 0
    assert info.region == "ap-southeast-1" and info.node_id.startswith("ND_")


def test_token_in_access_token_query_parameter(server: BackgroundServer) -> None:
    ws = connect(server, join_token("alice", "r1"), via_query=True)
    try:
        assert recv_signal(ws).join.participant.identity == "alice"
    finally:
        ws.close()


def test_ping_req_gets_pong_resp_echoing_the_timestamp(server: BackgroundServer) -> None:
    ws = connect(server, join_token())
    try:
        recv_signal(ws)
        before_ms = int(time.time() * 1000)
        ws.send_binary(ping_request(1_700_000_000_000, rtt_ms=12))
        pong = recv_kind(ws, "pong_resp").pong_resp
        assert pong.last_ping_timestamp == 1_700_000_000_000
        assert pong.timestamp >= before_ms - 1000

        ws.send_binary(proto_rtc.SignalRequest(ping=42).SerializeToString())
        assert recv_kind(ws, "pong").pong >= before_ms - 1000, "legacy ping gets a pong with server milliseconds"
    finally:
        ws.close()


def test_text_frames_get_protojson_replies_until_binary_again(server: BackgroundServer) -> None:
    ws = connect(server, join_token())
    try:
        recv_signal(ws)
        ws.send(json.dumps({"pingReq": {"timestamp": "5"}}))
        opcode, data = next_frame(ws)
        assert opcode == websocket.ABNF.OPCODE_TEXT
        assert json.loads(data)["pongResp"]["lastPingTimestamp"] == "5"
        ws.send_binary(ping_request(6))
        assert recv_kind(ws, "pong_resp").pong_resp.last_ping_timestamp == 6
    finally:
        ws.close()


def test_two_participants_see_each_other_join_and_leave(server: BackgroundServer) -> None:
    alice = connect(server, join_token("alice", "r1"))
    bob = None
    try:
        alice_sid = recv_signal(alice).join.participant.sid
        bob = connect(server, join_token("bob", "r1"))
        bob_join = recv_signal(bob).join
        assert [p.sid for p in bob_join.other_participants] == [alice_sid]
        assert bob_join.room.num_participants == 2

        joined = recv_kind(alice, "update").update.participants
        assert [(p.identity, p.sid, p.state) for p in joined] == [("bob", bob_join.participant.sid, JOINED)]

        bob.send_binary(leave_request())
        assert recv_close_code(bob) == 1000, "a client leave closes the socket normally"
        left = recv_kind(alice, "update").update.participants
        assert [(p.identity, p.state) for p in left] == [("bob", DISCONNECTED)]
    finally:
        alice.close()
        if bob is not None:
            bob.close()


def test_same_identity_replaces_the_earlier_connection(server: BackgroundServer) -> None:
    first = connect(server, join_token("alice", "r1"))
    second = connect(server, join_token("alice", "r1"))
    try:
        recv_signal(first)
        recv_signal(second)
        assert recv_kind(first, "leave").leave.reason == proto_models.DisconnectReason.DUPLICATE_IDENTITY
        assert recv_close_code(first) == 1000
    finally:
        first.close()
        second.close()


def test_join_timeout_removes_a_participant_that_never_becomes_active(fast_timeout_server: BackgroundServer) -> None:
    ws = connect(fast_timeout_server, join_token("alice", "r1"))
    try:
        recv_signal(ws)
        leave = recv_kind(ws, "leave").leave  # the socket timeout (5 s) bounds the wait for the 0.5 s timer
        assert leave.reason == proto_models.DisconnectReason.JOIN_FAILURE
        assert leave.action == proto_rtc.LeaveRequest.DISCONNECT
        assert recv_close_code(ws) == 1000
    finally:
        ws.close()
    listed = room_api(fast_timeout_server, lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room="r1")))
    assert list(listed.participants) == []


def test_server_shutdown_closes_participants_normally() -> None:
    from harness.procs.serving import background
    from harness.refstack.livekit.server import build_app

    with background(build_app) as srv:
        ws = connect(srv, join_token())
        recv_signal(ws)
    try:
        assert recv_kind(ws, "leave").leave.reason == proto_models.DisconnectReason.SERVER_SHUTDOWN
        assert recv_close_code(ws) == 1000
    finally:
        ws.close()


@pytest.mark.parametrize(
    ("token", "status", "body"),
    [
        (
            raw_token({"video": {"roomJoin": True, "room": "r1"}}, secret="wrong-secret-wrong-secret-wrong-x"),
            401,
            "invalid authorization token: signature is invalid",
        ),
        (raw_token({"iss": "otherkey", "video": {"roomJoin": True, "room": "r1"}}), 401, "invalid API key: otherkey"),
        (
            raw_token({"exp": int(time.time()) - 3600, "video": {"roomJoin": True, "room": "r1"}}),
            401,
            "invalid authorization token: token is expired",
        ),
        (raw_token({"video": {"roomList": True, "room": "r1"}}), 401, "permissions denied"),
        (raw_token({}), 401, "permissions denied"),
        (raw_token({"video": {"roomJoin": True}}), 400, "no room name"),
        (raw_token({"sub": "", "video": {"roomJoin": True, "room": "r1"}}), 400, "identity cannot be empty"),
    ],
    ids=["bad-signature", "wrong-iss", "expired", "no-roomJoin", "no-video-grant", "no-room", "no-identity"],
)
def test_rejected_tokens(server: BackgroundServer, token: str, status: int, body: str) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        connect(server, token)
    assert caught.value.status_code == status
    assert (caught.value.resp_body or b"").decode() == body

    validated = httpx.get(server.url + "/rtc/validate", headers={"Authorization": f"Bearer {token}"})
    assert (validated.status_code, validated.text) == (status, body)
    assert validated.headers["access-control-allow-origin"] == "*"


def test_no_token_and_non_bearer_header_are_401(server: BackgroundServer) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        websocket.create_connection(server.url.replace("http", "ws") + "/rtc", timeout=5)
    assert caught.value.status_code == 401
    response = httpx.get(server.url + "/rtc/validate", headers={"Authorization": f"Token {join_token()}"})
    assert response.status_code == 401 and response.text.startswith("invalid authorization header")


def test_validate_accepts_a_good_token(server: BackgroundServer) -> None:
    response = httpx.get(server.url + "/rtc/validate", params={"access_token": join_token()})
    assert (response.status_code, response.text) == (200, "success")
    assert response.headers["access-control-allow-origin"] == "*"


def test_plain_get_on_rtc_is_404(server: BackgroundServer) -> None:
    response = httpx.get(server.url + "/rtc", params={"access_token": join_token()})
    assert response.status_code == 404
