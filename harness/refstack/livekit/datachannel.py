"""How the stand-in delivers a server-sent `DataPacket` (RoomService.SendData) without a WebRTC data channel.

livekit-server sends it over each participant's data channel; the stand-in has no media plane, so the packet goes
over the participant's `/rtc` signalling websocket instead: one binary frame holding a `SignalResponse` whose
field DATA_PACKET_FIELD (a number LiveKit's schema does not use) carries the serialized `DataPacket`
(docs/protocols.md §7.3). Any SignalResponse reader skips the unknown field, so official clients are unaffected;
`read` gets the packet back out. The frame is sent in protobuf form even on a JSON-mode socket (protojson cannot
carry an unknown field).
"""

from __future__ import annotations

from livekit.protocol import models as proto_models

DATA_PACKET_FIELD = 1000
_TAG = (DATA_PACKET_FIELD << 3) | 2  # length-delimited


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    for _ in range(10):
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
    raise ValueError("varint longer than 10 bytes")


def frame(packet: proto_models.DataPacket) -> bytes:
    """The websocket frame for one packet."""
    body = packet.SerializeToString()
    return _varint(_TAG) + _varint(len(body)) + body


def read(data: bytes) -> proto_models.DataPacket | None:
    """The DataPacket in a frame made by `frame`; None for any other SignalResponse."""
    try:
        tag, at = _read_varint(data, 0)
        if tag != _TAG:
            return None
        size, at = _read_varint(data, at)
    except (IndexError, ValueError):
        return None
    if at + size != len(data):
        return None
    return proto_models.DataPacket.FromString(data[at:])
