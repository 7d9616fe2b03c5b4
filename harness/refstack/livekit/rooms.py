"""Rooms and participants of the LiveKit stand-in: one in-memory registry shared by Twirp and `/rtc`.

Everything runs on the server's one event loop, so no locks. A participant is reached through a `SignalSink`
(the `/rtc` module's websocket writer); the registry only queues `SignalResponse`s to it and asks it to close.

    /rtc join ──► RoomRegistry.join ──► others: SignalResponse{update}
                        │  arms join timer ── not ACTIVE after join_timeout_s ──► leave(JOIN_FAILURE) + close
    Twirp ──────► create / list / delete rooms, list / get / remove / update participants, mute tracks,
                  room metadata (─► RoomUpdate), SendData (─► DataPacket frames, datachannel.py)
    /rtc add_track ─► a published track (no media: published at once) ─► track_published, others: update
"""

from __future__ import annotations

import asyncio
import secrets
import string
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias, TypeVar

from livekit.protocol import models as proto_models
from livekit.protocol import room as proto_room
from livekit.protocol import rtc as proto_rtc

from harness.refstack.livekit.auth import Grants

DEFAULT_EMPTY_TIMEOUT_S = 300
"""A room created by CreateRoom that nobody joins is closed after this long (livekit-server default: 5 min)."""

DEFAULT_DEPARTURE_TIMEOUT_S = 20
"""A room is closed this long after its last participant left (livekit-server default: 20 s)."""

PING_INTERVAL_S = 5
PING_TIMEOUT_S = 15
SERVER_VERSION = "1.9.0"
"""The livekit-server version the stand-in reports in `ServerInfo`."""
SERVER_PROTOCOL = 16

Reason: TypeAlias = proto_models.DisconnectReason
_ALPHABET = string.ascii_letters + string.digits
_M = TypeVar("_M", proto_models.Room, proto_models.ParticipantInfo, proto_models.TrackInfo)


class NotFound(LookupError):
    """A room or participant does not exist; `str(exc)` is livekit-server's message."""


class FailedPrecondition(RuntimeError):
    """livekit-server's ErrRemoteUnmuteNoteEnabled and the like; `str(exc)` is its message."""


ROOM_NOT_FOUND = "requested room does not exist"
PARTICIPANT_NOT_FOUND = "participant does not exist"


class SignalSink(Protocol):
    """Where a participant's signal responses go; both calls return at once (the sink queues)."""

    def send(self, response: proto_rtc.SignalResponse) -> None: ...

    def send_data(self, packet: proto_models.DataPacket) -> None:
        """Deliver a server-sent DataPacket (datachannel.py: over the signalling socket, there being no data
        channel)."""

    def close(self) -> None:
        """Close the connection (code 1000) after the frames already queued."""


def new_sid(prefix: str) -> str:
    """A livekit-style id: prefix plus 12 base62 characters, e.g. `PA_x8Yk2sQm0aZb`."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(12))


@dataclass(eq=False)
class Participant:
    info: proto_models.ParticipantInfo
    sink: SignalSink
    room_name: str
    hidden: bool = False
    join_timer: asyncio.TimerHandle | None = None


@dataclass(eq=False)
class RoomState:
    room: proto_models.Room
    participants: dict[str, Participant] = field(default_factory=dict)
    close_timer: asyncio.TimerHandle | None = None

    def cancel_close(self) -> None:
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None


class RoomRegistry:
    """All rooms of one stand-in server, keyed by name."""

    def __init__(self, *, region: str, join_timeout_s: float) -> None:
        self.region = region
        self.join_timeout_s = join_timeout_s
        self.node_id = new_sid("ND_")
        self._rooms: dict[str, RoomState] = {}

    # ---- rooms -------------------------------------------------------------------------------------------------
    def create_room(self, req: proto_room.CreateRoomRequest) -> proto_models.Room:
        """Create the room, or return the existing one with the request's non-default settings applied."""
        state = self._rooms.get(req.name)
        created = state is None
        if state is None:
            state = self._new_room(req.name)
        room = state.room
        for name in ("empty_timeout", "departure_timeout", "max_participants", "metadata"):
            value = getattr(req, name)
            if value:
                setattr(room, name, value)
        if created:
            self._arm_close(state, room.empty_timeout)
        return _copy(room)

    def list_rooms(self, names: Iterable[str] = ()) -> list[proto_models.Room]:
        wanted = set(names)
        return [_copy(s.room) for name, s in self._rooms.items() if not wanted or name in wanted]

    def delete_room(self, name: str) -> None:
        state = self._rooms.get(name)
        if state is None:
            raise NotFound(ROOM_NOT_FOUND)
        self._close_room(state, proto_models.DisconnectReason.ROOM_DELETED)

    def _new_room(self, name: str) -> RoomState:
        now_ms = int(time.time() * 1000)
        room = proto_models.Room(
            sid=new_sid("RM_"),
            name=name,
            empty_timeout=DEFAULT_EMPTY_TIMEOUT_S,
            departure_timeout=DEFAULT_DEPARTURE_TIMEOUT_S,
            creation_time=now_ms // 1000,
            creation_time_ms=now_ms,
        )
        state = RoomState(room=room)
        self._rooms[name] = state
        return state

    def _arm_close(self, state: RoomState, after_s: float) -> None:
        state.cancel_close()
        loop = asyncio.get_running_loop()
        state.close_timer = loop.call_later(after_s, self._close_if_empty, state)

    def _close_if_empty(self, state: RoomState) -> None:
        state.close_timer = None
        if not state.participants and self._rooms.get(state.room.name) is state:
            del self._rooms[state.room.name]

    def _close_room(self, state: RoomState, reason: Reason) -> None:
        for participant in list(state.participants.values()):
            self.leave(participant, reason, notify_self=True)
        state.cancel_close()
        if self._rooms.get(state.room.name) is state:
            del self._rooms[state.room.name]

    def close_all(self, reason: Reason = proto_models.DisconnectReason.SERVER_SHUTDOWN) -> None:
        for state in list(self._rooms.values()):
            self._close_room(state, reason)

    # ---- participants ------------------------------------------------------------------------------------------
    def join(self, room_name: str, grants: Grants, sink: SignalSink) -> Participant:
        """Add a participant (auto-creating the room), tell the others, and arm the join timer. The participant is
        built before anything changes, so a join that fails leaves no room or participant behind."""
        now_ms = int(time.time() * 1000)
        info = proto_models.ParticipantInfo(
            sid=new_sid("PA_"),
            identity=grants.identity,
            name=grants.name,
            metadata=grants.metadata,
            state=proto_models.ParticipantInfo.JOINED,
            joined_at=now_ms // 1000,
            joined_at_ms=now_ms,
            region=self.region,
            kind=proto_models.ParticipantInfo.STANDARD,
            permission=_permission(grants),
        )
        info.attributes.update(grants.attributes)
        state = self._rooms.get(room_name) or self._new_room(room_name)
        state.cancel_close()
        previous = state.participants.get(grants.identity)
        if previous is not None:
            self.leave(previous, proto_models.DisconnectReason.DUPLICATE_IDENTITY, notify_self=True)
        participant = Participant(info=info, sink=sink, room_name=room_name, hidden=grants.allows("hidden"))
        state.participants[grants.identity] = participant
        state.room.num_participants = len(state.participants)
        self._broadcast_update(state, participant)
        participant.join_timer = asyncio.get_running_loop().call_later(
            self.join_timeout_s, self._join_timed_out, participant
        )
        return participant

    def join_response(self, participant: Participant) -> proto_rtc.JoinResponse:
        state = self._rooms[participant.room_name]
        others = [_copy(p.info) for p in state.participants.values() if p is not participant and not p.hidden]
        return proto_rtc.JoinResponse(
            room=_copy(state.room),
            participant=_copy(participant.info),
            other_participants=others,
            server_version=SERVER_VERSION,
            subscriber_primary=True,
            server_region=self.region,
            ping_timeout=PING_TIMEOUT_S,
            ping_interval=PING_INTERVAL_S,
            server_info=proto_models.ServerInfo(
                edition=proto_models.ServerInfo.Standard,
                version=SERVER_VERSION,
                protocol=SERVER_PROTOCOL,
                region=self.region,
                node_id=self.node_id,
            ),
        )

    def leave(self, participant: Participant, reason: Reason, *, notify_self: bool) -> None:
        """Remove a participant (idempotent): tell the others, optionally send it a `leave`, close its socket."""
        state = self._rooms.get(participant.room_name)
        if state is None or state.participants.get(participant.info.identity) is not participant:
            return
        del state.participants[participant.info.identity]
        state.room.num_participants = len(state.participants)
        if participant.join_timer is not None:
            participant.join_timer.cancel()
        participant.info.state = proto_models.ParticipantInfo.DISCONNECTED
        participant.info.disconnect_reason = reason
        self._broadcast_update(state, participant)
        if notify_self:
            leave = proto_rtc.LeaveRequest(can_reconnect=False, reason=reason, action=proto_rtc.LeaveRequest.DISCONNECT)
            participant.sink.send(proto_rtc.SignalResponse(leave=leave))
        participant.sink.close()
        if not state.participants:
            self._arm_close(state, state.room.departure_timeout)

    def list_participants(self, room_name: str) -> list[proto_models.ParticipantInfo]:
        """Participants of a room; a room that does not exist has none (as livekit-server's local store)."""
        state = self._rooms.get(room_name)
        return [_copy(p.info) for p in state.participants.values()] if state else []

    def get_participant(self, room_name: str, identity: str) -> proto_models.ParticipantInfo:
        return _copy(self._find(room_name, identity).info)

    def remove_participant(self, room_name: str, identity: str) -> None:
        self.leave(self._find(room_name, identity), proto_models.DisconnectReason.PARTICIPANT_REMOVED, notify_self=True)

    def _find(self, room_name: str, identity: str) -> Participant:
        state = self._rooms.get(room_name)
        participant = state.participants.get(identity) if state else None
        if participant is None:
            raise NotFound(PARTICIPANT_NOT_FOUND)
        return participant

    def _room(self, room_name: str) -> RoomState:
        state = self._rooms.get(room_name)
        if state is None:
            raise NotFound(ROOM_NOT_FOUND)
        return state

    def _find_in_room(self, room_name: str, identity: str) -> Participant:
        """roomAndParticipantForReq: an unknown room and an unknown identity are told apart."""
        participant = self._room(room_name).participants.get(identity)
        if participant is None:
            raise NotFound(PARTICIPANT_NOT_FOUND)
        return participant

    # ---- admin changes (RoomService) ---------------------------------------------------------------------------
    def update_participant(self, req: proto_room.UpdateParticipantRequest) -> proto_models.ParticipantInfo:
        """ParticipantImpl.UpdateMetadata then SetPermission: a non-empty name or metadata replaces the old one,
        attributes merge (an empty value deletes the key), a permission replaces the old one; everyone in the room,
        the participant too, gets the new ParticipantInfo."""
        participant = self._find(req.room, req.identity)
        info = participant.info
        if req.name:
            info.name = req.name
        if req.metadata:
            info.metadata = req.metadata
        for key, value in req.attributes.items():
            if value:
                info.attributes[key] = value
            else:
                info.attributes.pop(key, None)
        if req.HasField("permission"):
            info.permission.CopyFrom(req.permission)
            participant.hidden = req.permission.hidden
        self._broadcast_update(self._rooms[req.room], participant, include_self=True)
        return _copy(info)

    def mute_published_track(self, req: proto_room.MuteRoomTrackRequest) -> proto_room.MuteRoomTrackResponse:
        """SetTrackMuted from the server: the owner gets a `mute` request, everyone the new state; an unknown
        track gives an empty response, as livekit-server's. Unmuting needs `room.enable_remote_unmute`, which
        the stand-in (like livekit-server's default) does not enable."""
        participant = self._find_in_room(req.room, req.identity)
        if not req.muted:
            raise FailedPrecondition("remote unmute not enabled")
        track = next((t for t in participant.info.tracks if t.sid == req.track_sid), None)
        if track is None:
            return proto_room.MuteRoomTrackResponse()
        if not track.muted:
            track.muted = True
            participant.sink.send(proto_rtc.SignalResponse(mute=proto_rtc.MuteTrackRequest(sid=track.sid, muted=True)))
            self._broadcast_update(self._rooms[req.room], participant, include_self=False)
        return proto_room.MuteRoomTrackResponse(track=_copy(track))

    def update_subscriptions(self, req: proto_room.UpdateSubscriptionsRequest) -> None:
        """Accepted for a participant in the room; there is no media to (un)subscribe, so nothing changes."""
        self._find_in_room(req.room, req.identity)

    def send_data(self, req: proto_room.SendDataRequest) -> None:
        """Room.SendDataPacket with no sender: to everyone, or to the destination identities / sids only."""
        state = self._room(req.room)
        packet = proto_models.DataPacket(
            kind=req.kind,
            destination_identities=req.destination_identities,
            user=proto_models.UserPacket(
                payload=req.data,
                destination_sids=req.destination_sids,
                destination_identities=req.destination_identities,
                topic=req.topic if req.HasField("topic") else None,
                nonce=req.nonce,
            ),
        )
        identities, sids = set(req.destination_identities), set(req.destination_sids)
        for participant in state.participants.values():
            wanted = not identities and not sids
            if wanted or participant.info.identity in identities or participant.info.sid in sids:
                participant.sink.send_data(packet)

    def update_room_metadata(self, req: proto_room.UpdateRoomMetadataRequest) -> proto_models.Room:
        """Room.SetMetadata: every participant gets a RoomUpdate."""
        state = self._room(req.room)
        state.room.metadata = req.metadata
        update = proto_rtc.SignalResponse(room_update=proto_rtc.RoomUpdate(room=state.room))
        for participant in state.participants.values():
            participant.sink.send(update)
        return _copy(state.room)

    def publish_track(self, participant: Participant, req: proto_rtc.AddTrackRequest) -> None:
        """/rtc add_track: with no media plane the track counts as published at once (livekit-server waits for
        its media): the publisher gets track_published, the others the new ParticipantInfo."""
        track = proto_models.TrackInfo(
            sid=new_sid("TR_"),
            type=req.type,
            name=req.name,
            muted=req.muted,
            width=req.width,
            height=req.height,
            source=req.source,
            stereo=req.stereo,
            stream=req.stream,
        )
        participant.info.tracks.append(track)
        participant.sink.send(
            proto_rtc.SignalResponse(track_published=proto_rtc.TrackPublishedResponse(cid=req.cid, track=track))
        )
        state = self._rooms.get(participant.room_name)
        if state is not None and state.participants.get(participant.info.identity) is participant:
            self._broadcast_update(state, participant, include_self=False)

    def _join_timed_out(self, participant: Participant) -> None:
        # The stand-in has no WebRTC, so nobody reaches ACTIVE: like livekit-server, drop them after the timer.
        participant.join_timer = None
        if participant.info.state != proto_models.ParticipantInfo.ACTIVE:
            self.leave(participant, proto_models.DisconnectReason.JOIN_FAILURE, notify_self=True)

    def _broadcast_update(self, state: RoomState, subject: Participant, *, include_self: bool = False) -> None:
        """Others get the subject's new ParticipantInfo (not if it is hidden); with `include_self`, the subject
        too (its own metadata or permission changed)."""
        subject.info.version += 1
        update = proto_rtc.SignalResponse(update=proto_rtc.ParticipantUpdate(participants=[subject.info]))
        for other in state.participants.values():
            if (other is not subject and not subject.hidden) or (other is subject and include_self):
                other.sink.send(update)


def _permission(grants: Grants) -> proto_models.ParticipantPermission:
    return proto_models.ParticipantPermission(
        can_subscribe=grants.video.get("canSubscribe", True) is True,
        can_publish=grants.video.get("canPublish", True) is True,
        can_publish_data=grants.video.get("canPublishData", True) is True,
        hidden=grants.allows("hidden"),
        can_update_metadata=grants.allows("canUpdateOwnMetadata"),
    )


def _copy(message: _M) -> _M:
    clone = type(message)()
    clone.CopyFrom(message)
    return clone
