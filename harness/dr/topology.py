"""What the DR commands act on: the home region (Singapore), the standby region (Japan), the public entry point.

    public entry (CloudFront / the reference edge) ──► home region   (primary in normal operation)
                                                  └─► standby region (streaming replica; promoted on failover)

Roles change; names do not: failover promotes `standby` and moves traffic to it, failback makes `home` the primary
again. Who is primary at any moment is asked of the regions themselves (regions.py), never kept here.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.model.target_config import Secret

SINGAPORE = "ap-southeast-1"
JAPAN = "ap-northeast-1"


@dataclass(frozen=True)
class Region:
    name: str
    url: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", self.url.rstrip("/"))


@dataclass(frozen=True)
class Topology:
    home: Region
    standby: Region
    public_url: str
    """Where users connect (the edge / CloudFront): the write canary and the after-failover check go through it."""
    service_key: Secret
    """The service_role key: the regions' admin calls and the canary user's provisioning."""
    anon_key: Secret
    timeout_s: float = 5.0
    """Per-request timeout of probes and admin calls (a slower answer counts as a failure)."""

    def region(self, name: str) -> Region:
        for region in (self.home, self.standby):
            if region.name == name:
                return region
        raise KeyError(name)

    def other(self, region: Region) -> Region:
        return self.standby if region == self.home else self.home
