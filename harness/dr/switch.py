"""Traffic switches: what moves users from one region to the other once the database has been promoted.

    TrafficSwitch.active_region()            where traffic goes now (None when it cannot tell)
    TrafficSwitch.switch_to(region, dry_run) move it; `changed` False when it already went there (idempotent)

Implementations: `route53.Route53Switch` (failover or weighted records, as the deployment's Terraform sets DNS),
`edge.EdgeSwitch` (the reference edge's admin API), `command.CommandSwitch` (a user's `--switch-cmd`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SwitchResult:
    switch: str
    """Which switch acted: "route53", "edge", "command"."""
    region: str
    changed: bool
    """False when traffic already went to `region` (nothing was done) or on a dry run."""
    detail: str
    """One line for the journal: what was (or would have been) changed."""


class TrafficSwitch(Protocol):
    name: str

    def active_region(self) -> str | None: ...

    def switch_to(self, region: str, *, dry_run: bool = False) -> SwitchResult: ...
