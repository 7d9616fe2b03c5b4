"""`harness dr status`: who is primary, the lag, where each traffic switch points, and the last actions."""

from __future__ import annotations

from typing import Any

from harness.dr.actions import DrContext


def status(ctx: DrContext, last: int = 10) -> dict[str, Any]:
    regions = {}
    primaries = []
    for region in (ctx.topology.home, ctx.topology.standby):
        found = ctx.admin.status(region)
        regions[region.name] = {"url": region.url, **found.as_dict()}
        if found.role == "primary" and found.reachable:
            primaries.append(region.name)
    switches: dict[str, Any] = {}
    for switch in ctx.switches:
        try:
            switches[switch.name] = switch.active_region()
        except Exception as exc:  # a switch that cannot answer is reported, not fatal to the status
            switches[switch.name] = {"error": str(exc) or type(exc).__name__}
    return {
        "primary": primaries[0] if len(primaries) == 1 else None,
        "split_brain": len(primaries) > 1,
        "regions": regions,
        "switches": switches,
        "last_actions": ctx.journal.last_actions(last),
    }
