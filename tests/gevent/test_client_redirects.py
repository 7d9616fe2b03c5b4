"""A redirect names a host the harness never checked, so no client follows one: the HTTP transport reports the 3xx
as it came, and the websocket clients (LiveKit /rtc, Realtime) fail the handshake. The host the Location names never
sees a connection (docs/safety.md)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import gevent
import pytest

from harness.clients.events import ListEvent, Reporter
from harness.clients.http import Transport
from harness.clients.livekit import LiveKitClient
from harness.clients.supabase.realtime import RealtimeClient
from harness.clients.supabase.sync import RealtimeSocket


class Listener:
    """A loopback port; `redirect_to` set: answers every request with a 302 there, else only counts connections."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.redirect_to = redirect_to
        self.accepted = 0
        self._greenlets = [gevent.spawn(self._run)]

    def _run(self) -> None:
        while True:
            conn, _ = self.sock.accept()
            self.accepted += 1
            self._greenlets.append(gevent.spawn(self._answer, conn))

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            if self.redirect_to is None:
                return
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            path = data.split(b" ", 2)[1].decode()
            conn.sendall(
                f"HTTP/1.1 302 Found\r\nLocation: {self.redirect_to}{path}\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode()
            )

    def close(self) -> None:
        gevent.killall(self._greenlets)
        self.sock.close()


@pytest.fixture
def elsewhere() -> Iterator[Listener]:
    counting = Listener()
    yield counting
    counting.close()


@pytest.fixture(params=["http", "ws"])
def redirecting(request: pytest.FixtureRequest, elsewhere: Listener) -> Iterator[Listener]:
    """Redirects to `elsewhere`, by an http:// or a ws:// Location (websocket clients follow only the latter)."""
    server = Listener(redirect_to=f"{request.param}://127.0.0.1:{elsewhere.port}")
    yield server
    server.close()


def test_the_transport_reports_a_redirect_and_does_not_follow_it(redirecting: Listener, elsewhere: Listener) -> None:
    transport = Transport(f"http://127.0.0.1:{redirecting.port}", Reporter(request_event=ListEvent()))
    try:
        reply = transport.call("REST", "select", "GET", "/rest/v1/messages", headers={})
    finally:
        transport.close()
    assert reply.status == 302 and reply.error is not None
    assert elsewhere.accepted == 0


def test_websocket_clients_do_not_follow_a_redirect(redirecting: Listener, elsewhere: Listener) -> None:
    ws_base = f"ws://127.0.0.1:{redirecting.port}"
    events = ListEvent()
    joined = LiveKitClient(ws_base, request_event=events, signal_timeout_s=5).join("token")
    assert joined.connection is None and joined.error is not None
    realtime = RealtimeClient(f"http://127.0.0.1:{redirecting.port}", "anon-key", request_event=events)
    assert not realtime.connect()
    realtime.close()
    with pytest.raises(Exception, match=r"302|[Rr]edirect"):
        RealtimeSocket(f"{ws_base}/realtime/v1/websocket", timeout_s=5)
    assert redirecting.accepted == 3 and elsewhere.accepted == 0
