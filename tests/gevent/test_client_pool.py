"""Keep-alive reuse must survive file descriptors above 1023 (select()'s limit), as in a worker with many users."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from gevent.server import StreamServer

from harness.clients.events import Reporter
from harness.clients.http import Transport
from harness.clients.pool import socket_is_reusable


@pytest.fixture
def counting_server() -> Iterator[tuple[int, list[int]]]:
    """A tiny keep-alive HTTP server (gevent StreamServer), counting the connections it accepts."""
    accepted: list[int] = []
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"

    def serve(conn: socket.socket, _address: object) -> None:
        accepted.append(1)
        buffer = b""
        while data := conn.recv(65536):
            buffer += data
            while b"\r\n\r\n" in buffer:
                _head, buffer = buffer.split(b"\r\n\r\n", 1)
                conn.sendall(response)

    server = StreamServer(("127.0.0.1", 0), serve)
    server.start()
    yield server.server_port, accepted
    server.stop(timeout=1)


def test_pooled_connection_is_reused_above_fd_1024(counting_server: tuple[int, list[int]]) -> None:
    port, accepted = counting_server
    filler = [socket.socket() for _ in range(1100)]  # push the client's descriptors past FD_SETSIZE
    try:
        transport = Transport(f"http://127.0.0.1:{port}", Reporter())
        replies = [transport.call("REST", "ping", "GET", "/", headers={}, fire=False) for _ in range(20)]
        assert all(reply.status == 200 for reply in replies)
        assert len(accepted) == 1, f"{len(accepted)} connections for 20 keep-alive requests"
        transport.close()
    finally:
        for sock in filler:
            sock.close()


def test_a_socket_with_unread_bytes_or_a_fin_is_not_reused() -> None:
    left, right = socket.socketpair()
    assert socket_is_reusable(left)
    right.sendall(b"stray")
    assert not socket_is_reusable(left)
    left.recv(5)
    right.close()
    assert not socket_is_reusable(left)
    left.close()
    assert not socket_is_reusable(left)
