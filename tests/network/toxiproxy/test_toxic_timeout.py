"""timeout over real TCP: data dropped, inactivity close, 0 = never, removal closes."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import httpx
from tolerance import assert_close
from tp_helpers import connect, is_closed, upstream


class Recorder:
    def __init__(self) -> None:
        self.received = bytearray()
        self.lock = threading.Lock()

    def __call__(self, conn: socket.socket) -> None:
        while data := conn.recv(65536):
            with self.lock:
                self.received += data


def test_data_is_dropped_and_the_timer_restarts_on_each_chunk(
    data_api: httpx.Client, make_data_proxy: Callable
) -> None:
    recorder = Recorder()
    with upstream(recorder) as server:
        proxy = make_data_proxy(server.address)
        data_api.post(
            f"/proxies/{proxy['name']}/toxics",
            json={"type": "timeout", "stream": "upstream", "attributes": {"timeout": 250}},
        )
        with connect(proxy["listen"]) as sock:
            for _ in range(5):  # 0.5 s of traffic, every 100 ms: longer than the timeout, never idle for it
                sock.sendall(b"data")
                time.sleep(0.1)
            start = time.perf_counter()
            assert is_closed(sock, within_s=2)
            idle_close_s = time.perf_counter() - start
    assert recorder.received == b""
    assert_close(idle_close_s, 0.25 - 0.1, 0.1, "seconds from the last chunk's wait to the close")


def test_timeout_zero_never_closes_and_removal_closes(data_api: httpx.Client, make_data_proxy: Callable) -> None:
    with upstream() as server:
        proxy = make_data_proxy(server.address)
        url = f"/proxies/{proxy['name']}/toxics"
        data_api.post(url, json={"type": "timeout", "attributes": {"timeout": 0}})
        with connect(proxy["listen"]) as sock:
            sock.sendall(b"echo me")
            assert not is_closed(sock, within_s=0.3)  # the echo is dropped and nothing closes
            data_api.delete(f"{url}/timeout_downstream")
            assert is_closed(sock, within_s=2)
