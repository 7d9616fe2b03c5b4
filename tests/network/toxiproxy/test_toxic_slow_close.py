"""slow_close over real TCP: data passes at once, the close comes `delay` ms later."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx
from tolerance import assert_close
from tp_helpers import connect, recv_exactly, recv_until_closed, upstream


def say_bye_and_close(conn: socket.socket) -> None:
    conn.recv(16)
    conn.sendall(b"bye")
    conn.close()


def test_close_is_delayed_but_data_is_not(data_api: httpx.Client, make_data_proxy: Callable) -> None:
    with upstream(say_bye_and_close) as server:
        proxy = make_data_proxy(server.address)
        data_api.post(f"/proxies/{proxy['name']}/toxics", json={"type": "slow_close", "attributes": {"delay": 300}})
        with connect(proxy["listen"]) as sock:
            start = time.perf_counter()
            sock.sendall(b"hi")
            assert recv_exactly(sock, 3) == b"bye"
            data_at = time.perf_counter() - start
            assert recv_until_closed(sock) == b""
            closed_at = time.perf_counter() - start
    assert data_at < 0.1
    assert_close(closed_at, 0.3, 0.1, "seconds until the close")
