"""limit_data over real TCP: exactly `bytes` bytes pass, then the connection closes."""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx
from tp_helpers import connect, recv_until_closed, upstream


def send_250_bytes(conn: socket.socket) -> None:
    conn.recv(16)
    for _ in range(5):
        conn.sendall(b"x" * 50)


def test_downstream_is_cut_at_the_limit(data_api: httpx.Client, make_data_proxy: Callable) -> None:
    with upstream(send_250_bytes) as server:
        proxy = make_data_proxy(server.address)
        data_api.post(f"/proxies/{proxy['name']}/toxics", json={"type": "limit_data", "attributes": {"bytes": 120}})
        with connect(proxy["listen"]) as sock:
            sock.sendall(b"go")
            assert recv_until_closed(sock) == b"x" * 120
