"""One probe round of the primary, as users and operators see it.

    public_health   GET <public>/health        the edge and whichever origin it picks
    primary_health  GET <primary>/health       the primary region itself, not through the edge
    read            the canary's signed-in REST read, through the public entry point
    write           the canary's message insert, through the public entry point

A round passes only when every check passes within the timeout: a primary that answers /health but cannot take a
write is down for users. The monitor counts failed rounds (monitor.py); one lost round never fails over.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.dr.canary import Canary
from harness.dr.topology import Region, Topology

CHECKS = ("public_health", "primary_health", "read", "write")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    ms: float
    error: str | None = None


@dataclass(frozen=True)
class ProbeRound:
    primary: str
    """The region probed as the primary."""
    started_unix_s: float
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "primary": self.primary,
            "ok": self.ok,
            "checks": {c.name: {"ok": c.ok, "ms": round(c.ms, 1), **({"error": c.error} if c.error else {})}
                       for c in self.checks},
        }  # fmt: skip


class Prober:
    def __init__(self, topology: Topology, canary: Canary | None = None) -> None:
        self.topology = topology
        self.http = httpx.Client(timeout=topology.timeout_s)
        self.canary = canary or Canary(topology)

    def close(self) -> None:
        self.http.close()
        self.canary.close()

    def _health(self, url: str) -> None:
        resp = self.http.get(f"{url}/health")
        if resp.status_code != 200:
            raise RuntimeError(f"HTTP {resp.status_code}")

    def probe(self, primary: Region) -> ProbeRound:
        steps: list[tuple[str, Callable[[], None]]] = [
            ("public_health", lambda: self._health(self.topology.public_url)),
            ("primary_health", lambda: self._health(primary.url)),
            ("read", self.canary.read),
            ("write", self.canary.write),
        ]
        result = ProbeRound(primary.name, time.time())
        for name, step in steps:
            started = time.perf_counter()
            try:
                step()
                result.checks.append(Check(name, True, (time.perf_counter() - started) * 1000))
            except Exception as exc:  # any failure of a check is that check's result
                text = str(exc) or type(exc).__name__
                result.checks.append(Check(name, False, (time.perf_counter() - started) * 1000, text[:200]))
        return result
