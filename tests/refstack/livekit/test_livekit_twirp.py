"""Twirp RoomService (harness/refstack/livekit/twirp.py) driven by the official livekit-api client, plus raw HTTP
for what that client cannot show (JSON bodies, plain-text auth errors, bad routes)."""

from __future__ import annotations

import httpx
import pytest
from livekit import api
from lk_helpers import connect, join_token, poll, raw_token, recv_close_code, recv_kind, recv_signal, room_api

from harness.procs.serving import BackgroundServer


def test_health(server: BackgroundServer) -> None:
    response = httpx.get(server.url + "/")
    assert (response.status_code, response.text) == (200, "OK")


def test_create_list_delete_rooms(server: BackgroundServer) -> None:
    created = room_api(server, lambda lk: lk.room.create_room(api.CreateRoomRequest(name="standup", metadata="m")))
    assert created.name == "standup" and created.sid.startswith("RM_") and created.metadata == "m"
    assert created.empty_timeout == 300 and created.creation_time > 0

    again = room_api(server, lambda lk: lk.room.create_room(api.CreateRoomRequest(name="standup")))
    assert again.sid == created.sid, "CreateRoom on an existing room returns that room"
    room_api(server, lambda lk: lk.room.create_room(api.CreateRoomRequest(name="retro")))

    listed = room_api(server, lambda lk: lk.room.list_rooms(api.ListRoomsRequest()))
    assert sorted(r.name for r in listed.rooms) == ["retro", "standup"]
    only = room_api(server, lambda lk: lk.room.list_rooms(api.ListRoomsRequest(names=["retro"])))
    assert [r.name for r in only.rooms] == ["retro"]

    room_api(server, lambda lk: lk.room.delete_room(api.DeleteRoomRequest(room="standup")))
    listed = room_api(server, lambda lk: lk.room.list_rooms(api.ListRoomsRequest()))
    assert [r.name for r in listed.rooms] == ["retro"]


def test_participants_reflect_live_rtc_connections(server: BackgroundServer) -> None:
    ws = connect(server, join_token("alice", "r1"))
    try:
        joined = recv_signal(ws).join.participant
        listed = room_api(server, lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room="r1")))
        assert [(p.identity, p.sid) for p in listed.participants] == [("alice", joined.sid)]

        alice = api.RoomParticipantIdentity(room="r1", identity="alice")
        got = room_api(server, lambda lk: lk.room.get_participant(alice))
        assert got.sid == joined.sid and got.region == "ap-southeast-1"
        rooms = room_api(server, lambda lk: lk.room.list_rooms(api.ListRoomsRequest(names=["r1"])))
        assert rooms.rooms[0].num_participants == 1, "joining /rtc auto-creates the room"

        room_api(server, lambda lk: lk.room.remove_participant(alice))
        leave = recv_kind(ws, "leave").leave
        assert leave.reason == api.DisconnectReason.PARTICIPANT_REMOVED
        assert recv_close_code(ws) == 1000
    finally:
        ws.close()
    listed = room_api(server, lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room="r1")))
    assert list(listed.participants) == []


def test_delete_room_disconnects_its_participants(server: BackgroundServer) -> None:
    ws = connect(server, join_token("alice", "r1"))
    try:
        recv_signal(ws)
        room_api(server, lambda lk: lk.room.delete_room(api.DeleteRoomRequest(room="r1")))
        assert recv_kind(ws, "leave").leave.reason == api.DisconnectReason.ROOM_DELETED
        assert recv_close_code(ws) == 1000
    finally:
        ws.close()


def test_missing_grant_is_401_unauthenticated(server: BackgroundServer) -> None:
    participant_token = join_token("alice", "r1")
    with pytest.raises(api.TwirpError) as caught:
        room_api(server, lambda lk: lk.room.create_room(api.CreateRoomRequest(name="x")), token=participant_token)
    error = caught.value
    assert (error.status, error.code, error.message) == (401, "unauthenticated", "permissions denied")


def test_admin_grant_for_another_room_is_401(server: BackgroundServer) -> None:
    other_room_admin = join_token("ops", "other", room_admin=True)
    with pytest.raises(api.TwirpError) as caught:
        room_api(
            server, lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room="r1")), token=other_room_admin
        )
    assert (caught.value.status, caught.value.code) == (401, "unauthenticated")


def test_missing_room_and_participant_are_404(server: BackgroundServer) -> None:
    with pytest.raises(api.TwirpError) as caught:
        room_api(server, lambda lk: lk.room.delete_room(api.DeleteRoomRequest(room="nope")))
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        404,
        "not_found",
        "requested room does not exist",
    )
    with pytest.raises(api.TwirpError) as caught:
        room_api(server, lambda lk: lk.room.get_participant(api.RoomParticipantIdentity(room="nope", identity="x")))
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        404,
        "not_found",
        "participant does not exist",
    )


def test_bad_token_is_plain_text_401_before_twirp(server: BackgroundServer) -> None:
    forged = raw_token({"video": {"roomCreate": True}}, secret="not-the-secret-not-the-secret-xx")
    with pytest.raises(api.TwirpError) as caught:
        room_api(server, lambda lk: lk.room.list_rooms(api.ListRoomsRequest()), token=forged)
    assert (caught.value.status, caught.value.code) == (401, "unknown")

    response = httpx.post(
        server.url + "/twirp/livekit.RoomService/ListRooms",
        headers={"Authorization": f"Bearer {forged}", "Content-Type": "application/json"},
        content=b"{}",
    )
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "invalid authorization token: signature is invalid"


def _post(server: BackgroundServer, method: str, body: bytes, content_type: str = "application/json") -> httpx.Response:
    token = raw_token({"sub": "", "video": {"roomCreate": True, "roomList": True}})
    return httpx.post(
        f"{server.url}/twirp/livekit.RoomService/{method}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
        content=body,
    )


def test_json_uses_snake_case_names_with_defaults(server: BackgroundServer) -> None:
    response = _post(server, "CreateRoom", b'{"name": "standup", "emptyTimeout": 30, "unknown_field": 1}')
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    room = response.json()
    assert room["name"] == "standup" and room["empty_timeout"] == 30
    assert room["num_participants"] == 0 and room["metadata"] == "", "defaults are emitted"
    assert isinstance(room["creation_time"], str), "64-bit integers are JSON strings"
    listed = _post(server, "ListRooms", b"{}").json()
    assert [r["name"] for r in listed["rooms"]] == ["standup"]


@pytest.mark.parametrize(
    ("method", "content_type", "body", "status", "code"),
    [
        ("Nope", "application/json", b"{}", 404, "bad_route"),
        ("ListRooms", "text/plain", b"{}", 404, "bad_route"),
        ("ListRooms", "application/json", b"{not json", 400, "malformed"),
        ("ListRooms", "application/protobuf", b"\xff\xff\xff", 400, "malformed"),
        ("CreateRoom", "application/json", b"{}", 400, "invalid_argument"),
        ("PerformRpc", "application/json", b"{}", 501, "unimplemented"),
    ],
)
def test_twirp_errors_are_json_with_twirp_statuses(
    server: BackgroundServer, method: str, content_type: str, body: bytes, status: int, code: str
) -> None:
    response = _post(server, method, body, content_type)
    assert response.status_code == status
    assert response.json()["code"] == code
    assert response.json()["msg"]


def test_get_is_a_bad_route(server: BackgroundServer) -> None:
    response = httpx.get(server.url + "/twirp/livekit.RoomService/ListRooms")
    assert (response.status_code, response.json()["code"]) == (404, "bad_route")


def test_participant_is_removed_when_its_socket_closes(server: BackgroundServer) -> None:
    ws = connect(server, join_token("alice", "r1"))
    recv_signal(ws)
    ws.close()

    def gone() -> bool:
        listed = room_api(server, lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room="r1")))
        return not listed.participants

    assert poll(gone)


def test_room_nobody_joins_closes_after_its_empty_timeout(server: BackgroundServer) -> None:
    room_api(server, lambda lk: lk.room.create_room(api.CreateRoomRequest(name="brief", empty_timeout=1)))

    def closed() -> bool:
        listed = room_api(server, lambda lk: lk.room.list_rooms(api.ListRoomsRequest(names=["brief"])))
        return not listed.rooms

    assert not closed()
    assert poll(closed, timeout_s=5.0)
