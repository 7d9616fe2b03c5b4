"""The drill's faults on the reference stack, at the moment the drill chooses.

kill        SIGKILL Singapore's region server and its PostgreSQL (ReferenceStack.kill): a crash, no checkpoint
partition   the Toxiproxy proxy between the edge and Singapore disabled: the edge (and the DR monitor, which
            probes Singapore through the same link) cannot reach it; replication still flows
slow        a latency toxic on that proxy, far above the p95 gate
"""

from __future__ import annotations

from harness.model.drill_profile import Fault
from harness.network.toxiproxy_client import ToxiproxyClient
from harness.refstack.stack import PRIMARY_REGION, REPLICATION_PROXY, ReferenceStack

PROXY = f"origin_{PRIMARY_REGION}"


def inject(stack: ReferenceStack, fault: Fault, slow_latency_ms: int) -> str:
    """Apply the fault; returns a one-line label for the timeline."""
    if fault == "kill":
        stack.kill("primary")
        return "kill -9 Singapore's region server and PostgreSQL"
    with ToxiproxyClient(stack.endpoints.toxiproxy_url) as toxiproxy:
        if fault == "partition":
            toxiproxy.update_proxy(PROXY, enabled=False)
            return f"partition: proxy {PROXY} (edge → Singapore) disabled"
        toxiproxy.add_toxic(PROXY, {"name": "drill_slow", "type": "latency", "stream": "downstream", "toxicity": 1.0,
                                    "attributes": {"latency": slow_latency_ms, "jitter": 0}})  # fmt: skip
        return f"slow: {slow_latency_ms} ms latency on {PROXY} (edge → Singapore)"


def throttle_replication(stack: ReferenceStack, kbps: int) -> str:
    """Limit Singapore's WAL stream to Japan (a bandwidth toxic on the replication proxy), before the load starts."""
    with ToxiproxyClient(stack.endpoints.toxiproxy_url) as toxiproxy:
        toxic = {"name": "drill_replication_bandwidth", "type": "bandwidth", "stream": "downstream",
                 "toxicity": 1.0, "attributes": {"rate": kbps}}  # fmt: skip
        toxiproxy.add_toxic(REPLICATION_PROXY, toxic)
    return f"replication link Singapore → Japan limited to {kbps} KB/s"


def heal(stack: ReferenceStack, fault: Fault) -> str:
    """Undo a partition or slowness (a killed region is restarted by the recovery drill, not here)."""
    with ToxiproxyClient(stack.endpoints.toxiproxy_url) as toxiproxy:
        if fault == "partition":
            toxiproxy.update_proxy(PROXY, enabled=True)
        elif fault == "slow":
            toxiproxy.remove_toxic(PROXY, "drill_slow")
    return f"{fault} healed"
