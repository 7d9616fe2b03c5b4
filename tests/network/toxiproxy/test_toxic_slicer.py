"""slicer over real TCP: one write arrives as many small pieces, intact and in order."""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx
from tp_helpers import connect, upstream, wait_until

PAYLOAD = bytes(range(256)) * 4


class PieceRecorder:
    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def __call__(self, conn: socket.socket) -> None:
        while data := conn.recv(65536):
            self.pieces.append(data)


def test_upstream_write_is_sliced(data_api: httpx.Client, make_data_proxy: Callable) -> None:
    recorder = PieceRecorder()
    with upstream(recorder) as server:
        proxy = make_data_proxy(server.address)
        attributes = {"average_size": 16, "size_variation": 8, "delay": 2000}
        data_api.post(
            f"/proxies/{proxy['name']}/toxics", json={"type": "slicer", "stream": "upstream", "attributes": attributes}
        )
        with connect(proxy["listen"]) as sock:
            sock.sendall(PAYLOAD)
            assert wait_until(lambda: sum(map(len, recorder.pieces)) >= len(PAYLOAD))
    assert b"".join(recorder.pieces) == PAYLOAD
    assert len(recorder.pieces) >= 20  # ~64 pieces of 8–24 bytes, 2 ms apart; one write would be 1 piece
