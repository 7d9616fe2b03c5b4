"""Real TCP upstreams and client sockets for the Toxiproxy tests (loopback only, bounded by timeouts)."""

from __future__ import annotations

import contextlib
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator

IO_TIMEOUT_S = 5.0


class TcpServer:
    """A threaded upstream on 127.0.0.1:0; `handler(conn)` runs per accepted connection and may just return."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.handler = handler
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.settimeout(IO_TIMEOUT_S)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conns.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self.handler(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()


def echo(conn: socket.socket) -> None:
    while data := conn.recv(65536):
        conn.sendall(data)
    conn.close()


@contextlib.contextmanager
def upstream(handler: Callable[[socket.socket], None] = echo) -> Iterator[TcpServer]:
    server = TcpServer(handler)
    try:
        yield server
    finally:
        server.close()


def connect(listen: str, timeout_s: float = IO_TIMEOUT_S) -> socket.socket:
    host, port = listen.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=timeout_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        data = sock.recv(n - len(buf))
        if not data:
            break
        buf += data
    return bytes(buf)


def recv_until_closed(sock: socket.socket) -> bytes:
    buf = bytearray()
    while data := sock.recv(65536):
        buf += data
    return bytes(buf)


def round_trip_ms(sock: socket.socket, payload: bytes = b"ping") -> float:
    start = time.perf_counter()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return (time.perf_counter() - start) * 1000


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def wait_until(predicate: Callable[[], bool], timeout_s: float = IO_TIMEOUT_S, interval_s: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


def is_closed(sock: socket.socket, within_s: float) -> bool:
    """True if the peer closes (EOF or reset) within `within_s`, discarding data read meanwhile."""
    sock.settimeout(within_s)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    finally:
        sock.settimeout(IO_TIMEOUT_S)
