"""Twirp RoomService at `POST /twirp/livekit.RoomService/<Method>` (docs/protocols.md §7.2), and the Egress and
Ingress services answering as livekit-server without Redis does (`internal`: "egress not connected (redis required)").

Requests and responses are protobuf (`application/protobuf`) or protojson (`application/json`; responses use
snake_case proto names with defaults emitted, as livekit-server's Twirp server). Errors are `TwirpError` values
rendered in one place, `error_response`, as Twirp's JSON `{"code","msg","meta"?}` with Twirp's status mapping.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from livekit.protocol import egress as proto_egress
from livekit.protocol import ingress as proto_ingress
from livekit.protocol import room as proto_room

from harness.refstack.livekit.auth import PERMISSION_DENIED, Grants, valid_text
from harness.refstack.livekit.rooms import FailedPrecondition, NotFound, RoomRegistry

SERVICE = "livekit.RoomService"
PROTOBUF = "application/protobuf"
JSON = "application/json"

STATUS_BY_CODE = {
    "canceled": 408,
    "unknown": 500,
    "invalid_argument": 400,
    "malformed": 400,
    "deadline_exceeded": 408,
    "not_found": 404,
    "bad_route": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "unauthenticated": 401,
    "resource_exhausted": 429,
    "failed_precondition": 412,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "dataloss": 500,
}
"""Twirp's error code → HTTP status table (twirp `ServerHTTPStatusFromErrorCode`)."""


@dataclass
class TwirpError(Exception):
    code: str
    msg: str
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> int:
        return STATUS_BY_CODE[self.code]


def error_response(err: TwirpError) -> web.Response:
    """The one renderer of Twirp errors. Messages may echo a path or a header, so their text is made valid first:
    the body is always strict JSON (no NaN, no escaped lone surrogate)."""
    body: dict[str, Any] = {"code": err.code, "msg": valid_text(err.msg)}
    if err.meta:
        body["meta"] = {valid_text(k): valid_text(v) for k, v in err.meta.items()}
    return web.Response(status=err.status, text=json.dumps(body, allow_nan=False), content_type=JSON)


def bad_route(msg: str, request: web.Request) -> TwirpError:
    return TwirpError("bad_route", msg, {"twirp_invalid_route": f"{request.method} {request.path}"})


# ---- the service ---------------------------------------------------------------------------------------------------
Handler = Callable[[RoomRegistry, Grants | None, Any], Message]


@dataclass(frozen=True)
class Method:
    request_type: type[Message]
    handler: Handler


def _require(grants: Grants | None, key: str, room: str | None = None) -> None:
    """livekit-server's Ensure*Permission: the boolean grant `key`, and for admin calls the same `room`."""
    if grants is None or not grants.allows(key) or (room is not None and grants.room != room):
        raise TwirpError("unauthenticated", PERMISSION_DENIED)


def _create_room(rooms: RoomRegistry, grants: Grants | None, req: proto_room.CreateRoomRequest) -> Message:
    _require(grants, "roomCreate")
    if not req.name:
        raise TwirpError("invalid_argument", 'name: a room name is required (e.g. {"name": "standup"})')
    return rooms.create_room(req)


def _list_rooms(rooms: RoomRegistry, grants: Grants | None, req: proto_room.ListRoomsRequest) -> Message:
    _require(grants, "roomList")
    return proto_room.ListRoomsResponse(rooms=rooms.list_rooms(req.names))


def _delete_room(rooms: RoomRegistry, grants: Grants | None, req: proto_room.DeleteRoomRequest) -> Message:
    _require(grants, "roomCreate")
    rooms.delete_room(req.room)
    return proto_room.DeleteRoomResponse()


def _list_participants(rooms: RoomRegistry, grants: Grants | None, req: proto_room.ListParticipantsRequest) -> Message:
    _require(grants, "roomAdmin", req.room)
    return proto_room.ListParticipantsResponse(participants=rooms.list_participants(req.room))


def _get_participant(rooms: RoomRegistry, grants: Grants | None, req: proto_room.RoomParticipantIdentity) -> Message:
    _require(grants, "roomAdmin", req.room)
    return rooms.get_participant(req.room, req.identity)


def _remove_participant(rooms: RoomRegistry, grants: Grants | None, req: proto_room.RoomParticipantIdentity) -> Message:
    _require(grants, "roomAdmin", req.room)
    rooms.remove_participant(req.room, req.identity)
    return proto_room.RemoveParticipantResponse()


def _mute_published_track(rooms: RoomRegistry, grants: Grants | None, req: proto_room.MuteRoomTrackRequest) -> Message:
    _require(grants, "roomAdmin", req.room)
    return rooms.mute_published_track(req)


def _update_participant(
    rooms: RoomRegistry, grants: Grants | None, req: proto_room.UpdateParticipantRequest
) -> Message:
    _require(grants, "roomAdmin", req.room)
    return rooms.update_participant(req)


def _update_subscriptions(
    rooms: RoomRegistry, grants: Grants | None, req: proto_room.UpdateSubscriptionsRequest
) -> Message:
    _require(grants, "roomAdmin", req.room)
    rooms.update_subscriptions(req)
    return proto_room.UpdateSubscriptionsResponse()


def _send_data(rooms: RoomRegistry, grants: Grants | None, req: proto_room.SendDataRequest) -> Message:
    _require(grants, "roomAdmin", req.room)
    if req.nonce and len(req.nonce) != 16:
        raise TwirpError("invalid_argument", f"nonce should be 16-bytes or not present, got: {len(req.nonce)} bytes")
    rooms.send_data(req)
    return proto_room.SendDataResponse()


def _update_room_metadata(
    rooms: RoomRegistry, grants: Grants | None, req: proto_room.UpdateRoomMetadataRequest
) -> Message:
    _require(grants, "roomAdmin", req.room)
    return rooms.update_room_metadata(req)


METHODS: dict[str, Method] = {
    "CreateRoom": Method(proto_room.CreateRoomRequest, _create_room),
    "ListRooms": Method(proto_room.ListRoomsRequest, _list_rooms),
    "DeleteRoom": Method(proto_room.DeleteRoomRequest, _delete_room),
    "ListParticipants": Method(proto_room.ListParticipantsRequest, _list_participants),
    "GetParticipant": Method(proto_room.RoomParticipantIdentity, _get_participant),
    "RemoveParticipant": Method(proto_room.RoomParticipantIdentity, _remove_participant),
    "MutePublishedTrack": Method(proto_room.MuteRoomTrackRequest, _mute_published_track),
    "UpdateParticipant": Method(proto_room.UpdateParticipantRequest, _update_participant),
    "UpdateSubscriptions": Method(proto_room.UpdateSubscriptionsRequest, _update_subscriptions),
    "SendData": Method(proto_room.SendDataRequest, _send_data),
    "UpdateRoomMetadata": Method(proto_room.UpdateRoomMetadataRequest, _update_room_metadata),
}

UNIMPLEMENTED = frozenset({"ForwardParticipant", "MoveParticipant", "PerformRpc"})
"""RoomService methods the real server has and the stand-in does not serve (answered `unimplemented`): they move
participants between rooms or call into a participant's RPC handlers, which need a media and data plane."""


@dataclass(frozen=True)
class Unconnected:
    """A Twirp service livekit-server registers but serves only with Redis and its worker (egress, ingress): after
    the grant check every method answers `internal` with `message`, as `ErrEgressNotConnected` does."""

    grant: str
    message: str
    request_types: dict[str, type[Message]]


def _request_types(module: Any, service: str) -> dict[str, type[Message]]:
    methods = module.DESCRIPTOR.services_by_name[service].methods
    return {m.name: getattr(module, m.input_type.name) for m in methods}


UNCONNECTED: dict[str, Unconnected] = {
    "livekit.Egress": Unconnected(
        "roomRecord", "egress not connected (redis required)", _request_types(proto_egress, "Egress")
    ),
    "livekit.Ingress": Unconnected(
        "ingressAdmin", "ingress not connected (redis required)", _request_types(proto_ingress, "Ingress")
    ),
}


async def serve(request: web.Request, rooms: RoomRegistry, grants: Grants | None) -> web.Response:
    """Route one Twirp call; every failure becomes a TwirpError rendered by `error_response`."""
    try:
        return await _serve(request, rooms, grants)
    except TwirpError as err:
        return error_response(err)


async def _serve(request: web.Request, rooms: RoomRegistry, grants: Grants | None) -> web.Response:
    if request.method != "POST":
        raise bad_route(f'unsupported method "{request.method}" (only POST is allowed)', request)
    service, _, name = request.match_info["route"].partition("/")
    method = METHODS.get(name) if service == SERVICE else None
    unconnected = UNCONNECTED.get(service)
    if unconnected is not None and name in unconnected.request_types:
        method = Method(unconnected.request_types[name], _not_connected(unconnected))
    if method is None:
        if service == SERVICE and name in UNIMPLEMENTED:
            raise TwirpError("unimplemented", f"{name} is not implemented by the harness LiveKit stand-in")
        raise bad_route(f'no handler for path "{request.path}"', request)
    content_type = request.headers.get("Content-Type", "")
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind not in (PROTOBUF, JSON):
        raise bad_route(f'unexpected Content-Type: "{content_type}"', request)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:  # Twirp answers any failure to read the body as malformed
        raise TwirpError("malformed", f"failed to read request body: {exc.text}") from None
    message = _decode(method.request_type, body, kind)
    try:
        reply = method.handler(rooms, grants, message)
    except NotFound as exc:
        raise TwirpError("not_found", str(exc)) from exc
    except FailedPrecondition as exc:
        raise TwirpError("failed_precondition", str(exc)) from exc
    if kind == JSON:
        text = json_format.MessageToJson(
            reply, preserving_proto_field_name=True, always_print_fields_with_no_presence=True, indent=None
        )
        return web.Response(text=text, content_type=JSON)
    return web.Response(body=reply.SerializeToString(), content_type=PROTOBUF)


def _not_connected(service: Unconnected) -> Handler:
    def handler(_rooms: RoomRegistry, grants: Grants | None, _req: Any) -> Message:
        _require(grants, service.grant)
        raise TwirpError("internal", service.message)

    return handler


def _decode(request_type: type[Message], body: bytes, kind: str) -> Message:
    message = request_type()
    try:
        if kind == JSON:
            json_format.Parse(body.decode("utf-8"), message, ignore_unknown_fields=True)
        else:
            message.ParseFromString(body)
    except (json_format.ParseError, DecodeError, UnicodeDecodeError) as exc:
        what = "json" if kind == JSON else "protobuf"
        raise TwirpError("malformed", f"the {what} request could not be decoded") from exc
    return message
