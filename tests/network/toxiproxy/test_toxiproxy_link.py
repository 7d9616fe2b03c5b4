"""The data path over real TCP: direct forwarding, back-pressure through toxics, disable, delete, dial failure."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable

import httpx
import pytest
from tp_helpers import connect, is_closed, recv_exactly, round_trip_ms, upstream


def test_direct_path_carries_a_megabyte_intact(data_api: httpx.Client, make_data_proxy: Callable) -> None:
    payload = os.urandom(1_000_000)
    with upstream() as server:
        proxy = make_data_proxy(server.address)
        with connect(proxy["listen"]) as sock:
            sender = threading.Thread(target=sock.sendall, args=(payload,))
            sender.start()
            assert recv_exactly(sock, len(payload)) == payload
            sender.join(5)


def test_large_transfer_through_chained_toxics_is_intact(data_api: httpx.Client, make_data_proxy: Callable) -> None:
    # 8 MB both ways through two toxics per direction: exercises channel caps pausing and resuming the sockets.
    payload = os.urandom(8_000_000)
    with upstream() as server:
        proxy = make_data_proxy(server.address)
        url = f"/proxies/{proxy['name']}/toxics"
        for stream in ("upstream", "downstream"):
            data_api.post(
                url, json={"type": "latency", "stream": stream, "name": f"l_{stream}", "attributes": {"latency": 20}}
            )
            data_api.post(url, json={"type": "noop", "stream": stream, "name": f"n_{stream}"})
        with connect(proxy["listen"]) as sock:
            sender = threading.Thread(target=sock.sendall, args=(payload,))
            sender.start()
            assert recv_exactly(sock, len(payload)) == payload
            sender.join(5)


def test_disabling_closes_live_connections_and_the_listener(data_api: httpx.Client, make_data_proxy: Callable) -> None:
    with upstream() as server:
        proxy = make_data_proxy(server.address)
        with connect(proxy["listen"]) as sock:
            round_trip_ms(sock)
            assert data_api.patch(f"/proxies/{proxy['name']}", json={"enabled": False}).status_code == 200
            assert is_closed(sock, within_s=2)
        with pytest.raises(ConnectionRefusedError):
            connect(proxy["listen"])
        data_api.patch(f"/proxies/{proxy['name']}", json={"enabled": True})
        with connect(proxy["listen"]) as sock:
            round_trip_ms(sock)


def test_deleting_a_proxy_closes_its_connections(data_api: httpx.Client, make_data_proxy: Callable) -> None:
    with upstream() as server:
        proxy = make_data_proxy(server.address)
        url = f"/proxies/{proxy['name']}"
        data_api.post(f"{url}/toxics", json={"type": "latency", "attributes": {"latency": 5}})
        with connect(proxy["listen"]) as sock:
            round_trip_ms(sock)
            assert data_api.delete(url).status_code == 204
            assert is_closed(sock, within_s=2)


def test_upstream_dial_failure_closes_the_client(data_api: httpx.Client, make_data_proxy: Callable) -> None:
    unused = socket.create_server(("127.0.0.1", 0))
    port = unused.getsockname()[1]
    unused.close()  # nothing listens there now
    proxy = make_data_proxy(f"127.0.0.1:{port}")
    with connect(proxy["listen"]) as sock:
        assert is_closed(sock, within_s=2)


def test_client_close_closes_the_upstream(data_api: httpx.Client, make_data_proxy: Callable) -> None:
    upstream_closed = threading.Event()

    def wait_for_close(conn: socket.socket) -> None:
        while conn.recv(1024):
            pass
        upstream_closed.set()

    with upstream(wait_for_close) as server:
        proxy = make_data_proxy(server.address)
        sock = connect(proxy["listen"])
        sock.sendall(b"hello")
        sock.close()
        assert upstream_closed.wait(5)
