"""Bad input to the LiveKit stand-in's HTTP routes (issue 14, items 4 and 9): never a 500, errors in LiveKit's own
shape (Twirp JSON, or plain text before Twirp), and a refused request leaves no room behind."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest
import websocket
from lk_helpers import KEY, SECRET, raw_token, recv_signal, ws_url

from harness.procs.serving import BackgroundServer

TWIRP = "/twirp/livekit.RoomService/"
ADMIN = {"video": {"roomCreate": True, "roomList": True}}


def strict_json(text: str) -> object:
    """json.loads that refuses what strict parsers refuse: NaN, Infinity, and lone UTF-16 surrogates (raw, or as
    a `\\ud800` escape; an escaped pair such as `\\ud83d\\ude00` is fine)."""

    def refuse(constant: str) -> object:
        raise AssertionError(f"the server sent {constant}, which is not JSON")

    value = json.loads(text, parse_constant=refuse)
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # raises on a lone surrogate anywhere in the value
    return value


def hand_signed(payload: bytes) -> str:
    """An HS256 token over a payload written by hand, so it can hold what json.dumps would not write."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(payload)
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def list_rooms(server: BackgroundServer) -> list[str]:
    token = raw_token({"sub": "", **ADMIN})
    resp = httpx.post(
        server.url + TWIRP + "ListRooms",
        content=b"{}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert resp.status_code == 200, resp.text
    return [room["name"] for room in resp.json()["rooms"]]


@pytest.mark.parametrize("path", ["/rtc/validate", TWIRP + "ListRooms"])
def test_a_token_that_is_not_ascii_is_a_plain_401(server: BackgroundServer, path: str) -> None:
    headers = {"Authorization": b"Bearer \xff\xfe.\xed\xa0\x80", "Content-Type": b"application/json"}
    resp = httpx.request("GET" if path.startswith("/rtc") else "POST", server.url + path, headers=headers)
    assert (resp.status_code, resp.text) == (401, "invalid authorization token")


def test_an_issuer_with_a_lone_surrogate_is_a_plain_401(server: BackgroundServer) -> None:
    """The issuer is echoed in "invalid API key: …": a lone surrogate in it must not break the answer."""
    token = hand_signed(b'{"iss":"k\\ud800","sub":"a","exp":%d}' % (time.time() + 600))
    resp = httpx.get(server.url + "/rtc/validate", params={"access_token": token})
    assert resp.status_code == 401 and resp.text.startswith("invalid API key: k"), resp.text


CLAIMS_WITH_SURROGATES = {
    "identity": b'"sub":"a\\ud800","video":{"roomJoin":true,"room":"r"}',
    "room": b'"sub":"a","video":{"roomJoin":true,"room":"r\\udc00"}',
    "name-metadata-attributes": b'"sub":"a","name":"\\udc00","metadata":"\\ud800x","attributes":{"\\udc00":"\\ud800"}'
    b',"video":{"roomJoin":true,"room":"r"}',
}


@pytest.mark.parametrize("claims", CLAIMS_WITH_SURROGATES.values(), ids=CLAIMS_WITH_SURROGATES)
def test_lone_surrogates_in_claims_become_replacement_characters(server: BackgroundServer, claims: bytes) -> None:
    """As Go's JSON decoder in livekit-server: a lone surrogate in a signed claim reads as U+FFFD, and joining works
    (it used to drop the socket and leave the room behind)."""
    token = hand_signed(b'{"iss":"%s","exp":%d,%s}' % (KEY.encode(), time.time() + 600, claims))
    assert httpx.get(server.url + "/rtc/validate", params={"access_token": token}).status_code == 200
    ws = websocket.create_connection(ws_url(server), header=[f"Authorization: Bearer {token}"], timeout=5)
    try:
        join = recv_signal(ws).join
        for text in (join.room.name, join.participant.identity, join.participant.name, join.participant.metadata):
            assert not any("\ud800" <= ch <= "\udfff" for ch in text)
        assert join.room.name.startswith("r") and join.participant.identity.startswith("a")
        assert all("\ufffd" in k + v for k, v in join.participant.attributes.items())
    finally:
        ws.close()


def test_twirp_errors_echoing_odd_bytes_are_strict_json(server: BackgroundServer) -> None:
    resp = httpx.post(server.url + TWIRP + "ListRooms", content=b"{}", headers={"Content-Type": b"text/\xff\xfe"})
    assert resp.status_code == 404 and strict_json(resp.text)["code"] == "bad_route"  # type: ignore[index]
    for name in ("%ed%a0%80", "%F0%90%80%80", "%0A", "a%0Ab"):  # invalid UTF-8, an astral character, newlines
        resp = httpx.post(server.url + TWIRP + name, content=b"{}", headers={"Content-Type": "application/json"})
        assert resp.status_code == 404 and strict_json(resp.text)["code"] == "bad_route", (name, resp.text)


@pytest.mark.parametrize("content_type", ["application/json", "application/protobuf"])
def test_an_oversize_twirp_body_is_malformed_in_twirp_shape(server: BackgroundServer, content_type: str) -> None:
    resp = httpx.post(
        server.url + TWIRP + "ListRooms", content=b" " * ((1 << 20) + 1), headers={"Content-Type": content_type}
    )
    assert resp.status_code == 400, resp.text
    assert strict_json(resp.text) == {"code": "malformed", "msg": resp.json()["msg"]}
    assert resp.json()["msg"].startswith("failed to read request body")


@pytest.mark.parametrize(
    "body",
    [
        b'{"name":"x","empty_timeout":NaN}',
        b'{"name":"x","empty_timeout":Infinity}',
        b'{"name":"x","empty_timeout":1e400}',
        b'{"name":"x","egress":{"room":{"advanced":{"key_frame_interval":NaN}}}}',
        b'{"name":"x","egress":{"room":{"advanced":{"key_frame_interval":-Infinity}}}}',
        b'{"name":"x","egress":{"room":{"advanced":{"key_frame_interval":1e400}}}}',
        b'{"name":"x","max_participants":1' + b"0" * 5000 + b"}",
        b'{"name":"x\\ud800"}',
        b'{"name":"x","metadata":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
    ids=["nan", "inf", "1e400", "nested-nan", "nested-inf", "nested-1e400", "5000-digits", "surrogate", "deep"],
)
def test_non_finite_and_undecodable_json_is_malformed_and_creates_nothing(
    server: BackgroundServer, body: bytes
) -> None:
    token = raw_token({"sub": "", **ADMIN})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    resp = httpx.post(server.url + TWIRP + "CreateRoom", content=body, headers=headers)
    assert resp.status_code == 400, resp.text
    assert strict_json(resp.text)["code"] == "malformed"  # type: ignore[index]
    assert list_rooms(server) == []
