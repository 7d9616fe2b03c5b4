"""reset_peer over real TCP: a real RST (connection reset by peer) after `timeout` ms on the first chunk."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from tolerance import assert_close
from tp_helpers import connect, upstream


def test_client_sees_connection_reset(data_api: httpx.Client, make_data_proxy: Callable) -> None:
    with upstream() as server:
        proxy = make_data_proxy(server.address)
        data_api.post(
            f"/proxies/{proxy['name']}/toxics",
            json={"type": "reset_peer", "stream": "upstream", "attributes": {"timeout": 200}},
        )
        with connect(proxy["listen"]) as sock:
            start = time.perf_counter()
            sock.sendall(b"trigger")
            with pytest.raises(ConnectionResetError):
                while sock.recv(16):
                    pass
            elapsed = time.perf_counter() - start
    assert_close(elapsed, 0.2, 0.1, "seconds until the reset")
    assert server.accepted == 1


def test_silent_connection_is_never_reset(data_api: httpx.Client, make_data_proxy: Callable) -> None:
    with upstream() as server:
        proxy = make_data_proxy(server.address)
        data_api.post(f"/proxies/{proxy['name']}/toxics", json={"type": "reset_peer", "stream": "upstream"})
        with connect(proxy["listen"]) as sock:
            sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                sock.recv(16)
