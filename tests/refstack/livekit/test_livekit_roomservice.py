"""RoomService's admin changes through livekit-api against the stand-in, seen by `/rtc` participants: track mute,
participant updates, subscriptions, SendData (over the signalling socket: harness/refstack/livekit/datachannel.py),
room metadata; LiveKit's Twirp errors; Egress and Ingress answering as livekit-server without Redis."""

from __future__ import annotations

import httpx
import pytest
import websocket
from livekit import api
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc
from lk_helpers import connect, join_token, next_frame, raw_token, recv_kind, recv_signal, room_api

from harness.procs.serving import BackgroundServer
from harness.refstack.livekit import datachannel


def _join(server: BackgroundServer, identity: str, room: str = "r1") -> tuple[websocket.WebSocket, str]:
    ws = connect(server, join_token(identity, room))
    return ws, recv_signal(ws).join.participant.sid


def _participants(server: BackgroundServer, room: str = "r1") -> dict[str, proto_models.ParticipantInfo]:
    listed = room_api(server, lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room=room)))
    return {p.identity: p for p in listed.participants}


def _next_data(ws: websocket.WebSocket) -> proto_models.DataPacket:
    for _ in range(20):
        _, data = next_frame(ws)
        packet = datachannel.read(data)
        if packet is not None:
            return packet
    raise AssertionError("no DataPacket frame within 20 frames")


def test_update_participant_reaches_everyone_and_list_participants(server: BackgroundServer) -> None:
    alice, _ = _join(server, "alice")
    bob, _ = _join(server, "bob")
    try:
        recv_kind(alice, "update")  # bob joined
        permission = api.ParticipantPermission(can_subscribe=True, can_publish=False, can_publish_data=True)
        request = api.UpdateParticipantRequest(
            room="r1", identity="bob", name="Bob B", metadata='{"role":"host"}', attributes={"team": "red"},
            permission=permission,
        )  # fmt: skip
        info = room_api(server, lambda lk: lk.room.update_participant(request))
        assert (info.name, info.metadata, dict(info.attributes)) == ("Bob B", '{"role":"host"}', {"team": "red"})
        assert not info.permission.can_publish and info.permission.can_subscribe
        for ws in (alice, bob):  # the others and the participant itself
            (seen,) = recv_kind(ws, "update").update.participants
            assert (seen.identity, seen.name, dict(seen.attributes)) == ("bob", "Bob B", {"team": "red"})
        listed = _participants(server)["bob"]
        assert (listed.name, listed.metadata, listed.permission.can_publish) == ("Bob B", '{"role":"host"}', False)

        merge = api.UpdateParticipantRequest(room="r1", identity="bob", attributes={"team": "", "seat": "3"})
        info = room_api(server, lambda lk: lk.room.update_participant(merge))
        assert dict(info.attributes) == {"seat": "3"} and info.name == "Bob B"  # empty value deletes; name kept
        assert dict(_participants(server)["bob"].attributes) == {"seat": "3"}
    finally:
        alice.close()
        bob.close()


def test_mute_published_track_mutes_a_track_added_over_rtc(server: BackgroundServer) -> None:
    alice, _ = _join(server, "alice")
    bob, _ = _join(server, "bob")
    try:
        add = proto_rtc.AddTrackRequest(cid="mic-1", name="mic", type=proto_models.TrackType.AUDIO)
        alice.send_binary(proto_rtc.SignalRequest(add_track=add).SerializeToString())
        published = recv_kind(alice, "track_published").track_published
        assert published.cid == "mic-1" and published.track.sid.startswith("TR_") and not published.track.muted
        sid = published.track.sid
        assert [t.sid for t in _participants(server)["alice"].tracks] == [sid]

        mute = api.MuteRoomTrackRequest(room="r1", identity="alice", track_sid=sid, muted=True)
        response = room_api(server, lambda lk: lk.room.mute_published_track(mute))
        assert response.track.sid == sid and response.track.muted
        assert recv_kind(alice, "mute").mute == proto_rtc.MuteTrackRequest(sid=sid, muted=True)
        for _ in range(5):  # bob sees the track published, then muted
            (seen,) = recv_kind(bob, "update").update.participants
            if seen.tracks and seen.tracks[0].muted:
                break
        assert seen.identity == "alice" and seen.tracks[0].sid == sid and seen.tracks[0].muted
        assert _participants(server)["alice"].tracks[0].muted

        unknown = api.MuteRoomTrackRequest(room="r1", identity="alice", track_sid="TR_nope", muted=True)
        assert not room_api(server, lambda lk: lk.room.mute_published_track(unknown)).HasField("track")
        unmute = api.MuteRoomTrackRequest(room="r1", identity="alice", track_sid=sid, muted=False)
        with pytest.raises(api.TwirpError) as refused:
            room_api(server, lambda lk: lk.room.mute_published_track(unmute))
        assert (refused.value.code, refused.value.message) == ("failed_precondition", "remote unmute not enabled")
    finally:
        alice.close()
        bob.close()


def test_send_data_reaches_rtc_clients_as_data_packets(server: BackgroundServer) -> None:
    alice, _ = _join(server, "alice")
    bob, bob_sid = _join(server, "bob")
    try:
        everyone = api.SendDataRequest(room="r1", data=b"hello", kind=api.DataPacket.RELIABLE, topic="chat")
        room_api(server, lambda lk: lk.room.send_data(everyone))
        for ws in (alice, bob):
            packet = _next_data(ws)
            assert (packet.kind, packet.user.payload, packet.user.topic) == (api.DataPacket.RELIABLE, b"hello", "chat")
        only_bob = api.SendDataRequest(room="r1", data=b"psst", destination_identities=["bob"], nonce=b"n" * 16)
        room_api(server, lambda lk: lk.room.send_data(only_bob))
        packet = _next_data(bob)
        assert packet.user.payload == b"psst" and list(packet.destination_identities) == ["bob"]
        by_sid = api.SendDataRequest(room="r1", data=b"sid", destination_sids=[bob_sid])
        room_api(server, lambda lk: lk.room.send_data(by_sid))
        assert _next_data(bob).user.payload == b"sid"
        alice.settimeout(0.3)
        with pytest.raises(websocket.WebSocketTimeoutException):
            _next_data(alice)  # neither targeted packet reached alice

        # livekit-api always sets a 16-byte nonce; another client may not.
        token = raw_token({"video": {"roomAdmin": True, "room": "r1"}})
        response = httpx.post(
            f"{server.url}/twirp/livekit.RoomService/SendData",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/protobuf"},
            content=api.SendDataRequest(room="r1", data=b"x", nonce=b"abc").SerializeToString(),
            timeout=5,
        )
        assert (response.status_code, response.json()) == (
            400,
            {"code": "invalid_argument", "msg": "nonce should be 16-bytes or not present, got: 3 bytes"},
        )
    finally:
        alice.close()
        bob.close()


def test_update_subscriptions_and_room_metadata(server: BackgroundServer) -> None:
    alice, _ = _join(server, "alice")
    try:
        subscribe = api.UpdateSubscriptionsRequest(room="r1", identity="alice", track_sids=["TR_x"], subscribe=True)
        assert room_api(server, lambda lk: lk.room.update_subscriptions(subscribe)) == api.UpdateSubscriptionsResponse()
        update = api.UpdateRoomMetadataRequest(room="r1", metadata='{"topic":"standup"}')
        room = room_api(server, lambda lk: lk.room.update_room_metadata(update))
        assert room.name == "r1" and room.metadata == '{"topic":"standup"}'
        assert recv_kind(alice, "room_update").room_update.room.metadata == '{"topic":"standup"}'
        listed = room_api(server, lambda lk: lk.room.list_rooms(api.ListRoomsRequest(names=["r1"])))
        assert listed.rooms[0].metadata == '{"topic":"standup"}'
    finally:
        alice.close()


def _error(server: BackgroundServer, call: object) -> tuple[str, str, int]:
    with pytest.raises(api.TwirpError) as refused:
        room_api(server, call)  # type: ignore[arg-type]
    return refused.value.code, refused.value.message, refused.value.status


def test_unknown_rooms_and_participants_get_livekits_not_found(server: BackgroundServer) -> None:
    alice, _ = _join(server, "alice")
    try:
        no_room = ("not_found", "requested room does not exist", 404)
        no_one = ("not_found", "participant does not exist", 404)
        meta = api.UpdateRoomMetadataRequest(room="nowhere", metadata="m")
        assert _error(server, lambda lk: lk.room.update_room_metadata(meta)) == no_room
        assert _error(server, lambda lk: lk.room.send_data(api.SendDataRequest(room="nowhere", data=b"x"))) == no_room
        mute = api.MuteRoomTrackRequest(room="nowhere", identity="alice", track_sid="TR_x", muted=True)
        assert _error(server, lambda lk: lk.room.mute_published_track(mute)) == no_room
        mute = api.MuteRoomTrackRequest(room="r1", identity="zed", track_sid="TR_x", muted=True)
        assert _error(server, lambda lk: lk.room.mute_published_track(mute)) == no_one
        update = api.UpdateParticipantRequest(room="r1", identity="zed", name="z")
        assert _error(server, lambda lk: lk.room.update_participant(update)) == no_one
        subscriptions = api.UpdateSubscriptionsRequest(room="r1", identity="zed", track_sids=["TR_x"])
        assert _error(server, lambda lk: lk.room.update_subscriptions(subscriptions)) == no_one
    finally:
        alice.close()


def test_egress_and_ingress_answer_as_livekit_server_without_redis(server: BackgroundServer) -> None:
    egress = ("internal", "egress not connected (redis required)", 500)
    ingress = ("internal", "ingress not connected (redis required)", 500)
    composite = api.RoomCompositeEgressRequest(room_name="r1")
    assert _error(server, lambda lk: lk.egress.start_room_composite_egress(composite)) == egress
    assert _error(server, lambda lk: lk.egress.list_egress(api.ListEgressRequest())) == egress
    assert _error(server, lambda lk: lk.egress.stop_egress(api.StopEgressRequest(egress_id="EG_x"))) == egress
    assert _error(server, lambda lk: lk.ingress.create_ingress(api.CreateIngressRequest(name="i"))) == ingress
    assert _error(server, lambda lk: lk.ingress.list_ingress(api.ListIngressRequest())) == ingress
    # Without the grant, the grant check answers first; an unknown method is still a bad route.
    token = raw_token({"video": {"roomAdmin": True, "room": "r1"}})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    denied = httpx.post(f"{server.url}/twirp/livekit.Egress/ListEgress", headers=headers, content=b"{}", timeout=5)
    assert (denied.status_code, denied.json()["code"]) == (401, "unauthenticated")
    nope = httpx.post(f"{server.url}/twirp/livekit.Ingress/Nope", headers=headers, content=b"{}", timeout=5)
    assert (nope.status_code, nope.json()["code"]) == (404, "bad_route")


def test_data_packet_frames_decode_only_as_data_packets() -> None:
    packet = proto_models.DataPacket(user=proto_models.UserPacket(payload=b"\x00\xff" * 300, topic="t"))
    frame = datachannel.frame(packet)
    assert datachannel.read(frame) == packet
    assert proto_rtc.SignalResponse.FromString(frame).WhichOneof("message") is None  # official readers skip it
    pong = proto_rtc.SignalResponse(pong=5).SerializeToString()
    assert datachannel.read(pong) is None and datachannel.read(b"") is None and datachannel.read(frame[:-1]) is None
