"""The edge's routing decision: which region's origin serves a viewer. A pure function, no I/O.

This module imports only the standard library, because the same file ships inside the Lambda@Edge deployment
package (see `lambda_edge.py`) and is used unchanged by the local edge (`server.py`).

    viewer country ──► preferred region ──► healthy? ──yes──► preferred            reason "preferred"
                        CN → Japan                └──no──► other healthy? ──yes──► other    reason "failover"
                        HK, MO → policy field                              └──no──► preferred reason "no-healthy-origin"
                        anyone else → Singapore

A DR traffic switch (the local edge's admin API, `admin.py`) replaces the policy with `switched_policy(home, R)`:
data only, so the Lambda@Edge package can carry a switched policy the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

SINGAPORE = "ap-southeast-1"
JAPAN = "ap-northeast-1"

Reason = Literal["preferred", "failover", "no-healthy-origin"]


@dataclass(frozen=True)
class RoutingPolicy:
    """Which region each viewer prefers. Country codes are ISO 3166-1 alpha-2, as in CloudFront-Viewer-Country."""

    primary_region: str = SINGAPORE
    """Where every viewer not listed below goes; the region whose failure moves everyone to the secondary."""

    secondary_region: str = JAPAN
    """The replica: preferred by `secondary_countries`, and everyone's failover target."""

    secondary_countries: frozenset[str] = frozenset({"CN"})
    """Viewers behind the Great Firewall: from mainland China, Japan is the better path (docs/network-calibration.md
    §1: lower RTT than Singapore on all three carriers)."""

    hk_mo_to_secondary: bool = False
    """Send Hong Kong (HK) and Macau (MO) to the secondary too. Off by default: both are outside the Great
    Firewall, CloudFront has edges in Hong Kong, Singapore is as close as Tokyo from there, and the primary takes
    writes without replica lag."""

    pinned_prefixes: Mapping[str, str] = field(default_factory=dict)
    """Path prefix → region, overriding the country (e.g. pin a drill's canary path). Empty by default."""

    def preferred_region(self, viewer_country: str | None, path: str) -> str:
        for prefix, region in self.pinned_prefixes.items():
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return region
        country = normalize_country(viewer_country)
        if country is None:
            return self.primary_region
        if country in self.secondary_countries or (self.hk_mo_to_secondary and country in ("HK", "MO")):
            return self.secondary_region
        return self.primary_region

    def other(self, region: str) -> str:
        return self.secondary_region if region == self.primary_region else self.primary_region

    @property
    def regions(self) -> tuple[str, str]:
        """(primary, secondary): the only regions this policy can send a viewer to."""
        return (self.primary_region, self.secondary_region)


def switched_policy(home: RoutingPolicy, primary_region: str) -> RoutingPolicy:
    """The policy after a DR traffic switch makes `primary_region` everyone's primary.

    Switching to the home primary gives `home` back unchanged. Switching to the home secondary sends every viewer
    there (China, Hong Kong and pinned paths included: the old primary is what the drill moved away from); the
    old primary becomes the health-based failover target. Raises ValueError for a region `home` does not route to.
    """
    if primary_region == home.primary_region:
        return home
    if primary_region != home.secondary_region:
        raise ValueError(f"unknown region {primary_region!r}; valid: {', '.join(home.regions)}")
    return RoutingPolicy(
        primary_region=primary_region,
        secondary_region=home.primary_region,
        secondary_countries=frozenset(),
        hk_mo_to_secondary=False,
        pinned_prefixes={},
    )


@dataclass(frozen=True)
class Decision:
    """Where a request goes and why. `preferred` is where it would go if every origin were healthy."""

    region: str
    reason: Reason
    preferred: str
    country: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"region": self.region, "reason": self.reason, "preferred": self.preferred, "country": self.country}


def normalize_country(value: str | None) -> str | None:
    """'cn ' → 'CN'; anything that is not two ASCII letters (missing, '', 'China') → None (unknown viewer)."""
    if value is None:
        return None
    code = value.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        return None
    return code


def choose_origin(viewer_country: str | None, path: str, health: Mapping[str, bool], policy: RoutingPolicy) -> Decision:
    """Pick the origin region for one request.

    A region missing from `health` counts as healthy: Lambda@Edge has no health data per request, so it routes on
    country alone. When no origin is healthy the preferred one is kept: the health view may be wrong (a partition
    between the edge and the origins), and the viewer then gets the preferred origin's own error rather than a
    flap between two bad origins.
    """
    preferred = policy.preferred_region(viewer_country, path)
    country = normalize_country(viewer_country)
    if health.get(preferred, True):
        return Decision(preferred, "preferred", preferred, country)
    other = policy.other(preferred)
    if health.get(other, True):
        return Decision(other, "failover", preferred, country)
    return Decision(preferred, "no-healthy-origin", preferred, country)
