"""A shaped group's network profile as result.json's `run.networks` entry: the figures the report's network
prediction needs (harness/model/network_predict.py), and whether the loss was really applied (--kernel only)."""

from __future__ import annotations

from collections.abc import Mapping

from harness.model.result import NetworkConditions
from harness.network.profiles import NetworkProfile


def conditions(profile: NetworkProfile, *, kernel: bool, tls: bool) -> NetworkConditions:
    stalls = [f for f in profile.faults if f.kind == "stall"]
    return NetworkConditions(
        profile=profile.name,
        rtt_ms=2 * profile.latency.one_way_ms,
        jitter_ms=profile.latency.jitter_ms,
        loss_pct=profile.loss.percent.value,
        loss_applied=kernel and profile.loss.percent.value > 0,
        down_kbps=profile.bandwidth.down_kbps.value if profile.bandwidth.down_kbps is not None else None,
        up_kbps=profile.bandwidth.up_kbps.value if profile.bandwidth.up_kbps is not None else None,
        stall_pct=100.0 * sum(f.toxicity.value for f in stalls),
        stall_ms=max((f.duration_ms for f in stalls), default=0.0),
        tls=tls,
    )


def all_conditions(networks: Mapping[str, NetworkProfile], *, kernel: bool, url: str) -> dict[str, NetworkConditions]:
    """group → conditions, for every shaped group."""
    tls = url.lower().startswith("https:")
    return {group: conditions(p, kernel=kernel, tls=tls) for group, p in networks.items()}
