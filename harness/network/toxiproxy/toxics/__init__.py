"""The toxics, one module each, and the one registry that names them (wire `type` → class).

A type is available to the API only if it is listed here; importing a module registers nothing.
"""

from __future__ import annotations

from harness.network.toxiproxy.toxics.bandwidth import BandwidthToxic
from harness.network.toxiproxy.toxics.base import Toxic, ToxicStub
from harness.network.toxiproxy.toxics.latency import LatencyToxic
from harness.network.toxiproxy.toxics.limit_data import LimitDataToxic
from harness.network.toxiproxy.toxics.noop import NoopToxic
from harness.network.toxiproxy.toxics.reset_peer import ResetPeerToxic
from harness.network.toxiproxy.toxics.slicer import SlicerToxic
from harness.network.toxiproxy.toxics.slow_close import SlowCloseToxic
from harness.network.toxiproxy.toxics.timeout import TimeoutToxic

REGISTRY: dict[str, type[Toxic]] = {
    "noop": NoopToxic,
    "latency": LatencyToxic,
    "bandwidth": BandwidthToxic,
    "slow_close": SlowCloseToxic,
    "timeout": TimeoutToxic,
    "reset_peer": ResetPeerToxic,
    "slicer": SlicerToxic,
    "limit_data": LimitDataToxic,
}
"""Toxic types by wire name, as Toxiproxy 2.12 registers them (its HTTP-only toxics are not implemented)."""

__all__ = ["REGISTRY", "NoopToxic", "Toxic", "ToxicStub"]
