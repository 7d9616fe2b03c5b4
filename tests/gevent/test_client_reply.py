"""A reply's JSON body is parsed on first use, once, with the same result as parsing eagerly."""

from __future__ import annotations

from harness.clients.http import Reply


def test_json_body_is_parsed_on_first_use_and_cached() -> None:
    reply = Reply(200, b'[{"id": 1}]', 1.0, json_pending=True)
    assert reply.raw_body == b'[{"id": 1}]'  # nothing parsed yet: a loop that only checks `ok` pays nothing
    assert reply.body == [{"id": 1}]
    assert reply.json_pending is False
    assert reply.body is reply.body


def test_binary_and_undecodable_bodies() -> None:
    assert Reply(200, b"\x00\x01", 1.0).body == b"\x00\x01"
    assert Reply(500, b"not json", 1.0, json_pending=True).body == b"not json"  # kept as it came, as before
