"""The reference edge's origin switch (its admin API), as a TrafficSwitch:

    GET  <edge>/_edge/admin/primary                     {"primary_region": ...}
    POST <edge>/_edge/admin/primary {"region": R}       {"primary_region": R, "changed": bool, ...}

Both need `Authorization: Bearer <service_role key>`. After a switch to the standby region every viewer, China
included, is sent there; switching back to the home region restores the edge's own routing policy.
"""

from __future__ import annotations

import httpx

from harness.dr.switch import SwitchResult
from harness.dr.topology import Topology

ADMIN_PATH = "/_edge/admin/primary"


class EdgeSwitchFailed(Exception):
    pass


class EdgeSwitch:
    name = "edge"

    def __init__(self, topology: Topology, edge_url: str | None = None) -> None:
        self.url = (edge_url or topology.public_url).rstrip("/") + ADMIN_PATH
        self.topology = topology

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.topology.service_key.reveal()}"}

    def _call(self, method: str, body: dict[str, str] | None = None) -> dict[str, object]:
        try:
            resp = httpx.request(method, self.url, json=body, headers=self._headers(), timeout=self.topology.timeout_s)
        except httpx.HTTPError as exc:
            raise EdgeSwitchFailed(f"{method} {self.url}: {type(exc).__name__}: {exc}") from None
        if resp.status_code != 200:
            raise EdgeSwitchFailed(f"{method} {self.url}: HTTP {resp.status_code} {resp.text[:160]}")
        answer: dict[str, object] = resp.json()
        return answer

    def active_region(self) -> str | None:
        region = self._call("GET").get("primary_region")
        return str(region) if region else None

    def switch_to(self, region: str, *, dry_run: bool = False) -> SwitchResult:
        if dry_run:
            current = self.active_region()
            changed = current != region
            detail = f"would send edge traffic to {region}" if changed else f"edge traffic already goes to {region}"
            return SwitchResult(self.name, region, False, detail)
        answer = self._call("POST", {"region": region})
        changed = bool(answer.get("changed"))
        detail = f"edge traffic now goes to {region}" if changed else f"edge traffic already went to {region}"
        return SwitchResult(self.name, region, changed, detail)
