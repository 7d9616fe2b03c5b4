"""Viewer country on the local stack: `CloudFront-Viewer-Country` on every request and websocket handshake.

Real CloudFront sets the header from the viewer's IP; the reference edge reads it from the request instead
(docs/edge.md), so a China user is a user that sends `CN`. Sent only to loopback targets (`RunState.viewer`
drops the country otherwise): a real CloudFront ignores a viewer's claim, and the claim must not leak to a real
deployment. The clients send it: `SupabaseSession(headers=...)`, `RealtimeClient(headers=...)`,
`Transport(headers=...)`.
"""

from __future__ import annotations

HEADER = "CloudFront-Viewer-Country"


def viewer_headers(country: str | None) -> dict[str, str]:
    """The headers a user claiming `country` sends ({} for none)."""
    return {HEADER: country} if country else {}
