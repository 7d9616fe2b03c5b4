"""The regions' admin API, as the DR commands use it (docs/failover.md; the reference region serves it):

    GET  /_replication/status    {"role": "primary"|"replica", "replication_lag_bytes", "replication_lag_ms", ...}
    POST /_admin/promote          finish recovery (idempotent)
    POST /_admin/demote           {"primary_url"}: rewind (or re-copy) and follow the new primary
    POST /_admin/switchover       {"to"}: planned switchover, no acknowledged write lost

A deployment that promotes another way (Supabase's management API, RDS) passes `--promote-cmd` instead
(hooks.py); the status call is then still asked of the region when it answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from harness.dr.topology import Region, Topology


class AdminCallFailed(Exception):
    """An admin call did not succeed; the message says which, where and why (never a key)."""


@dataclass(frozen=True)
class RegionStatus:
    region: str
    reachable: bool
    role: str | None = None
    """"primary" or "replica"; None when the region did not answer."""
    lag_bytes: int | None = None
    lag_s: float | None = None
    """On a primary: its worst standby's replay lag; on a replica: WAL received but not yet replayed."""
    primary_url: str | None = None
    """The primary a replica follows (the reference region reports it)."""
    primary_reachable: bool | None = None
    """On a replica: whether its WAL receiver is streaming."""
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class RegionAdmin:
    def __init__(self, topology: Topology, http: httpx.Client | None = None) -> None:
        self.topology = topology
        self.http = http or httpx.Client(timeout=topology.timeout_s)

    def _headers(self) -> dict[str, str]:
        key = self.topology.service_key.reveal()
        return {"apikey": key, "Authorization": f"Bearer {key}"}

    def status(self, region: Region) -> RegionStatus:
        try:
            resp = self.http.get(f"{region.url}/_replication/status", headers=self._headers())
            body = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            return RegionStatus(region.name, False, error=_describe(exc))
        if resp.status_code != 200 or not body.get("database_reachable", True):
            return RegionStatus(region.name, False, role=body.get("role"), error=_error_of(resp, body))
        lag_ms = body.get("replication_lag_ms")
        return RegionStatus(
            region.name, True, role=body.get("role"), lag_bytes=body.get("replication_lag_bytes"),
            lag_s=None if lag_ms is None else float(lag_ms) / 1000, primary_url=body.get("primary_url"),
            primary_reachable=body.get("primary_reachable"),
        )  # fmt: skip

    def _post(self, region: Region, path: str, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        try:
            resp = self.http.post(f"{region.url}{path}", json=body, headers=self._headers(), timeout=timeout_s)
        except httpx.HTTPError as exc:
            raise AdminCallFailed(f"POST {path} on {region.name} ({region.url}): {_describe(exc)}") from None
        try:
            answer: dict[str, Any] = resp.json()
        except ValueError:
            answer = {}
        if resp.status_code != 200:
            raise AdminCallFailed(f"POST {path} on {region.name}: {_error_of(resp, answer)}")
        return answer

    def promote(self, region: Region) -> dict[str, Any]:
        return self._post(region, "/_admin/promote", {}, timeout_s=90)

    def demote(self, region: Region, new_primary: Region) -> dict[str, Any]:
        return self._post(region, "/_admin/demote", {"primary_url": new_primary.url}, timeout_s=300)

    def switchover(self, primary: Region, to: Region, timeout_s: float = 30) -> dict[str, Any]:
        body = {"to": to.url, "timeout_s": timeout_s}
        return self._post(primary, "/_admin/switchover", body, timeout_s=timeout_s + 300)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _error_of(resp: httpx.Response, body: Any) -> str:
    message = body.get("message") or body.get("database_error") if isinstance(body, dict) else None
    return f"HTTP {resp.status_code}" + (f": {message}" if message else "")
