"""websocket-client settings and helpers every websocket of the harness shares: no redirects followed, and closing
a socket from a greenlet that may be killed while it closes."""

from __future__ import annotations

import contextlib

import websocket

NO_REDIRECTS = 0
"""`redirect_limit` of every `websocket.create_connection`: a handshake answered with a redirect fails; its Location
names a host the allow-list never checked (docs/safety.md). websocket-client follows 3 by default."""


def close_websocket(ws: websocket.WebSocket) -> None:
    """Send a close frame and drop the socket, without waiting for the server's close frame.

    websocket-client's `close()` waits for that frame inside a bare `except:`, which swallows gevent's
    `GreenletExit`: a Locust user killed while it leaves a meeting or closes a Realtime socket would keep running,
    and `runner.quit()` would wait for it forever."""
    with contextlib.suppress(websocket.WebSocketException, OSError):
        ws.send_close()
    with contextlib.suppress(OSError):
        ws.shutdown()
