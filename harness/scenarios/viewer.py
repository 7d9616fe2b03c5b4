"""Viewer country on the local stack: `CloudFront-Viewer-Country` on every request and websocket handshake.

Real CloudFront sets the header from the viewer's IP; the reference edge reads it from the request instead
(docs/edge.md), so a China user is a user that sends `CN`. Sent only to loopback targets: a real CloudFront
ignores a viewer's claim, and the claim must not leak to a real deployment.

The clients take no extra headers yet, so this module adds them from outside: the HTTP transport's default
headers (geventhttpclient's `UserAgent.default_headers`, merged into every request) and a `RealtimeClient`
subclass whose handshake sends them (and reports the handshake's `x-origin-region` with `RT connect`). Both
go away once the clients accept `headers=` (see docs/scenarios.md).
"""

from __future__ import annotations

import time
from typing import Any

import websocket

from harness.clients.http import REGION_HEADER
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
        self.origin_region = ""
        """Region that answered the last handshake (`x-origin-region`), "" if none said."""

    def _open(self, name: str, *, fire_success: bool = True) -> bool:
        # RealtimeClient._open plus `header=` and the handshake's origin region in the event's context; remove when
        # the client does both itself.
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
        self.origin_region = str((ws.getheaders() or {}).get(REGION_HEADER, ""))
        self._ws = ws
        self._heartbeat_ref = None
        self._next_heartbeat = time.monotonic()
        if fire_success:
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.reporter.fire("RT", name, elapsed_ms, context={"origin_region": self.origin_region})
        return True
