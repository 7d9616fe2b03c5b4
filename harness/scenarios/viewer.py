"""Viewer country on the local stack: `CloudFront-Viewer-Country` on every request and websocket handshake.

Real CloudFront sets the header from the viewer's IP; the reference edge reads it from the request instead
(docs/edge.md), so a China user is a user that sends `CN`. Sent only to loopback targets: a real CloudFront
ignores a viewer's claim, and the claim must not leak to a real deployment.

The clients take no extra headers yet, so this module adds them from outside: the HTTP transport's default
headers (geventhttpclient's `UserAgent.default_headers`, merged into every request) and a `RealtimeClient`
subclass whose handshake sends them. Both go away once the clients accept `headers=` (see docs/scenarios.md).
"""

from __future__ import annotations

import time
from typing import Any

import websocket

from harness.clients.realtime import RealtimeClient, _failure
from harness.clients.supabase import SupabaseSession

HEADER = "CloudFront-Viewer-Country"


def viewer_headers(country: str | None) -> dict[str, str]:
    return {HEADER: country} if country else {}


def add_session_headers(session: SupabaseSession, headers: dict[str, str]) -> None:
    """Send `headers` on every HTTP request of `session` (auth, REST, storage, functions)."""
    if headers:
        session.transport.http.client.default_headers.update(headers)


class HeaderRealtimeClient(RealtimeClient):
    """A RealtimeClient whose websocket handshakes (first connect and every reconnect) carry extra headers."""

    def __init__(self, *args: Any, headers: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.headers = dict(headers or {})

    def _open(self, name: str, *, fire_success: bool = True) -> bool:
        if not self.headers:
            return super()._open(name, fire_success=fire_success)
        # Same as RealtimeClient._open, plus `header=`; remove when the client takes headers itself.
        started = time.perf_counter()
        try:
            ws = websocket.create_connection(
                self.url,
                header=[f"{k}: {v}" for k, v in self.headers.items()],
                timeout=self.connect_timeout_s,
                skip_utf8_validation=True,
                enable_multithread=True,
            )
        except (websocket.WebSocketException, OSError) as exc:
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.reporter.fire("RT", name, elapsed_ms, exception=_failure(f"RT {name}", exc))
            return False
        ws.settimeout(self.reply_timeout_s)
        self._ws = ws
        self._heartbeat_ref = None
        self._next_heartbeat = time.monotonic()
        if fire_success:
            self.reporter.fire("RT", name, (time.perf_counter() - started) * 1000)
        return True
