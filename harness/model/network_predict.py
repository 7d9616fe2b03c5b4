"""What a shaped group's latency should be, from its network's RTT, jitter, bandwidth and loss. Pure; no I/O.

For each request name of the shaped group, the baseline group's figures for the same name stand for the edge and
the origin (they ran on the LAN), and the network adds round trips, transfer time and loss recovery:

    predicted = baseline (edge + origin) + round trips × RTT + sent bytes / up + wire bytes / down (+ an RTO)

    round trips:  keep-alive request 1 · new connection + 1 TLS 1.3 on https · websocket connect: the upgrade 1
                  (LiveKit's join reply follows the upgrade at once). Toxiproxy delays data, not the TCP handshake
                  (the client connects to a local listener), so the TCP round trip a real path adds per new
                  connection is not in the emulation and not in the prediction (docs/china.md).
    jitter:       Toxiproxy adds ± uniform J to each direction of each round trip: the p95 of the 2n draws is
                  about 1.645 × J × sqrt(2n / 3)
    loss:         a request meets a downstream loss with P = 1 - (1 - p)^packets; a loss costs about one RTO,
                  max(200 ms (Linux TCP_RTO_MIN), RTT + 4 × jitter) — 1 s for a lost handshake (RFC 6298's
                  initial RTO). It moves the p50 when P > 50 % and the p95 when P > 5 %. Toxiproxy cannot drop
                  packets: loss counts only when the run applied it (--kernel).

The group's predicted p95 mixes every name's baseline distribution, shifted by its network cost and weighted by the
shaped group's request counts. Figures: docs/china.md ("Predicted vs measured"), RTT and loss from
docs/network-calibration.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.model.breakdown import CONNECT_EVENTS, Part
from harness.model.result import NetworkConditions
from harness.model.sketch import bucket_value_ms

RTO_MIN_MS = 200.0
"""Linux's TCP_RTO_MIN: the least a retransmission timeout waits."""
SYN_RTO_MS = 1000.0
"""RFC 6298's initial RTO: what a lost handshake packet costs."""
MSS_BYTES = 1448
"""Payload of one full TCP segment (1500-byte MTU, timestamps on)."""
Z95 = 1.645


@dataclass(frozen=True)
class Prediction:
    name: str
    kind: str
    """`keep-alive`, `new connection`, `websocket`, `upload` or `download`."""
    requests: int
    round_trips_p50: float
    round_trips_p95: float
    server_p50_ms: float | None
    """The baseline group's p50 of the same name (edge + origin on the LAN); None without one."""
    server_p95_ms: float | None
    transfer_ms: float
    """Mean bytes over the path's bandwidth, both directions."""
    loss_hit_pct: float
    """Share of requests meeting at least one downstream loss (0 when the run applied none)."""
    p50_ms: float
    p95_ms: float
    measured_p50_ms: float | None
    measured_p95_ms: float | None

    @property
    def gap_p95_ms(self) -> float | None:
        return None if self.measured_p95_ms is None else self.measured_p95_ms - self.p95_ms

    @property
    def gap_p50_ms(self) -> float | None:
        return None if self.measured_p50_ms is None else self.measured_p50_ms - self.p50_ms


def rto_ms(net: NetworkConditions) -> float:
    return max(RTO_MIN_MS, net.rtt_ms + 4 * net.jitter_ms)


def _handshake_rts(net: NetworkConditions) -> float:
    """Round trips a new connection adds through Toxiproxy: TLS's (its handshake is data); TCP's is local."""
    return 1.0 if net.tls else 0.0


def kind_of(part: Part) -> str:
    legs = part.legs
    if CONNECT_EVENTS.get(part.name) == part.request_type:
        return "websocket"
    if legs is None:
        return "keep-alive"
    calls = legs.new + legs.reused
    if calls and legs.sent / calls > 16_000:
        return "upload"
    if calls and legs.received / calls > 16_000:
        return "download"
    return "new connection" if calls and legs.new / calls > 0.5 else "keep-alive"


def predict(part: Part, baseline: Part | None, net: NetworkConditions) -> Prediction:
    """The prediction for one name of the shaped group (`baseline`: the same name in the baseline group)."""
    legs = part.legs
    calls = (legs.new + legs.reused) if legs is not None else 0
    new_share = legs.new / calls if legs is not None and calls else 0.0
    sent = legs.sent / calls if legs is not None and calls else 0.0
    wire = legs.received / calls if legs is not None and calls else 0.0
    kind = kind_of(part)
    if kind == "websocket":
        rt50 = rt95 = 1.0 + _handshake_rts(net)  # the upgrade (+ TLS)
    else:
        rt50 = 1.0 + (_handshake_rts(net) if new_share > 0.5 else 0.0)
        rt95 = 1.0 + (_handshake_rts(net) if new_share > 0.05 else 0.0)
    transfer = 0.0
    if net.up_kbps:
        transfer += sent * 8 / net.up_kbps  # bytes × 8 / (kilobits per second) = milliseconds
    if net.down_kbps:
        transfer += wire * 8 / net.down_kbps
    hit = 0.0
    if net.loss_applied and net.loss_pct > 0:
        packets = 2 * rt95 + math.ceil(wire / MSS_BYTES)  # every round trip brings a packet back, plus the body
        hit = 1 - (1 - net.loss_pct / 100) ** packets
    server50 = baseline.sketch.quantile(0.5) if baseline is not None else None
    server95 = baseline.sketch.quantile(0.95) if baseline is not None else None
    jitter95 = Z95 * net.jitter_ms * math.sqrt(2 * rt95 / 3)
    rto = SYN_RTO_MS if kind in ("websocket", "new connection") else rto_ms(net)
    p50 = (server50 or 0.0) + rt50 * net.rtt_ms + transfer + (rto if hit > 0.5 else 0.0)
    p95 = (server95 or 0.0) + rt95 * net.rtt_ms + jitter95 + transfer + (rto if hit > 0.05 else 0.0)
    m50, m95 = part.sketch.quantiles([0.5, 0.95])
    return Prediction(
        part.name, kind, part.sketch.count, rt50, rt95, server50, server95, transfer, 100 * hit, p50, p95, m50, m95
    )


def group_p95(
    parts: list[Part], baselines: dict[str, Part], net: NetworkConditions, unmodelled: Sequence[Part] = ()
) -> float | None:
    """The shaped group's predicted p95: each name's baseline distribution shifted by its network cost (a share
    `loss_hit_pct` further by an RTO), weighted by the shaped group's counts. `unmodelled` parts (events that wait
    for no round trip: broadcasts, pings) count as measured."""
    points: list[tuple[float, float]] = []
    for part in unmodelled:
        points += [(bucket_value_ms(k), float(c)) for k, c in part.sketch.bins.items()]
        points.append((0.0, float(part.sketch.zeros)))
    for part in parts:
        if part.sketch.count == 0:
            continue
        pred = predict(part, baselines.get(part.name), net)
        shift = pred.p50_ms - (pred.server_p50_ms or 0.0)
        hit = pred.loss_hit_pct / 100 if pred.loss_hit_pct <= 50 else 0.0  # above 50 % the p50 already has it
        base = baselines.get(part.name)
        if base is None or base.sketch.count == 0:
            points.append((pred.p50_ms, float(part.sketch.count)))
            continue
        scale = part.sketch.count / base.sketch.count
        values = [(bucket_value_ms(k), c) for k, c in base.sketch.bins.items()] + [(0.0, base.sketch.zeros)]
        for value, count in values:
            if count:
                points.append((value + shift, count * scale * (1 - hit)))
                if hit:
                    points.append((value + shift + rto_ms(net), count * scale * hit))
    return weighted_quantile(points, 0.95)


def weighted_quantile(points: list[tuple[float, float]], q: float) -> float | None:
    total = sum(w for _, w in points)
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    for value, weight in sorted(points):
        seen += weight
        if seen >= rank:
            return value
    return max(v for v, _ in points)
