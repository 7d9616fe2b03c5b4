"""Toxiproxy proxies in front of the regions' HTTP ports, so a drill can partition or slow one region at the edge.

    edge ──► 127.0.0.1:<proxy port> ── proxy "origin_ap-southeast-1" ──► Singapore :54321
         └─► 127.0.0.1:<proxy port> ── proxy "origin_ap-northeast-1" ──► Japan     :54322
    Japan's replication and its write forwarding ─────────────────────► Singapore :54321 (direct, never proxied)

The Toxiproxy server is the network layer's embedded one, started as a piece by its factory string (the reference
stack does not import the network layer); proxies are made through its HTTP API, as any Toxiproxy client would:
`POST /proxies/origin_ap-southeast-1 {"enabled": false}` cuts Singapore off, a `latency` toxic slows it.
"""

from __future__ import annotations

import httpx

from harness.errors import TargetUnreachable

TOXIPROXY_FACTORY = "harness.network.toxiproxy.api:build_app"
PROXY_PREFIX = "origin_"
API_TIMEOUT_S = 10.0


def proxy_name(region: str) -> str:
    """`origin_ap-southeast-1`: the proxy in front of one region's HTTP port."""
    return PROXY_PREFIX + region


def create(api_url: str, name: str, host: str, upstream_port: int, listen_port: int = 0) -> int:
    """Create (enabled) a proxy listening on host:listen_port (0 = any) for host:upstream_port; its listen port."""
    body = {"name": name, "listen": f"{host}:{listen_port}", "upstream": f"{host}:{upstream_port}", "enabled": True}
    try:
        response = httpx.post(f"{api_url}/proxies", json=body, timeout=API_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise TargetUnreachable(f"toxiproxy at {api_url}: cannot create proxy {name!r}: {exc}") from None
    if response.status_code != 201:
        raise TargetUnreachable(
            f"toxiproxy at {api_url}: creating proxy {name!r} answered {response.status_code}: {response.text[:300]}"
        )
    listen = str(response.json()["listen"])
    return int(listen.rpartition(":")[2])
