"""An embedded, Toxiproxy-compatible TCP fault proxy: the Toxiproxy 2.x HTTP API and its toxics on asyncio.

Layers, as in Shopify/toxiproxy: `api` (HTTP) → `proxy_collection` → `proxy` (listener, dial) → `connection`
(two sockets) → `link` (one direction, a chain of toxics) → `toxics/` (one module per toxic, one registry).
Run it with `harness toxiproxy serve`, or in-process with `harness.procs.serving.background(build_app)`.
"""

from __future__ import annotations

from harness.network.toxiproxy.api import VERSION, build_app

__all__ = ["VERSION", "build_app"]
