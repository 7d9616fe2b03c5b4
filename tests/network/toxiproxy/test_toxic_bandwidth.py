"""bandwidth over real TCP: KB/s with 1 KB = 1000 bytes."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx
from tolerance import assert_close
from tp_helpers import connect, recv_exactly, upstream

PAYLOAD_BYTES = 100_000


def send_payload_on_request(conn: socket.socket) -> None:
    while conn.recv(16):
        conn.sendall(b"b" * PAYLOAD_BYTES)


def test_downstream_rate_in_kilobytes_per_second(data_api: httpx.Client, make_data_proxy: Callable) -> None:
    with upstream(send_payload_on_request) as server:
        proxy = make_data_proxy(server.address)
        data_api.post(f"/proxies/{proxy['name']}/toxics", json={"type": "bandwidth", "attributes": {"rate": 200}})
        with connect(proxy["listen"]) as sock:
            start = time.perf_counter()
            sock.sendall(b"go")
            assert recv_exactly(sock, PAYLOAD_BYTES) == b"b" * PAYLOAD_BYTES
            elapsed = time.perf_counter() - start
    assert_close(elapsed, PAYLOAD_BYTES / 200_000, 0.15, "seconds for 100 kB at 200 KB/s")


def test_negative_rate_is_rejected(data_api: httpx.Client, make_data_proxy: Callable) -> None:
    proxy = make_data_proxy("127.0.0.1:1")
    resp = data_api.post(f"/proxies/{proxy['name']}/toxics", json={"type": "bandwidth", "attributes": {"rate": -1}})
    assert resp.status_code == 400 and "rate" in resp.json()["error"]


def test_removing_a_stalled_bandwidth_toxic_releases_the_data(
    data_api: httpx.Client, make_data_proxy: Callable
) -> None:
    with upstream() as server:
        proxy = make_data_proxy(server.address)
        url = f"/proxies/{proxy['name']}/toxics"
        data_api.post(url, json={"type": "bandwidth", "attributes": {"rate": 0}})  # 0 stalls, as in Toxiproxy
        with connect(proxy["listen"]) as sock:
            sock.sendall(b"held")
            sock.settimeout(0.3)
            try:
                early = sock.recv(16)
            except TimeoutError:
                early = b""
            assert early == b""
            sock.settimeout(5)
            data_api.delete(f"{url}/bandwidth_downstream")
            assert recv_exactly(sock, 4) == b"held"
