"""Every message accounted for, per hop, and the first hop where deliveries go missing (docs/delivery.md).

    client (workers, merged by the master)      servers (GET …/hops at the end of the run, harness/run/hops.py)
    sent, acked, expected, received, outcomes    region: feed, fanout, written, drops · edge: relayed
                      └──────────── HopWindow per window of the send time ────────────┘
                                               │
    attribute(windows) ─► acked → feed (messages) ─► expected → fanout → written → relayed → received (deliveries)
                      ─► the first hop whose count falls short of the one before it, with every shortfall counted

The delivery chain starts from what the clients expected (plus first copies they did not expect, which the servers
count too) and compares each hop with the one before it. A region's change feed sees every message once, so `feed`
is the largest over the regions; frames are per subscriber, so `fanout` and `written` add up over the regions.
Pure functions over result.json's `hops` section: `harness report` recomputes nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator

from harness.model import hop_counts as hc
from harness.model.metrics import DELIVERY_LEGS
from harness.model.sketch import Sketch

EDGE_PIECE = "edge"
REGION_PIECE_PREFIX = "region "
"""Server pieces are named `edge` and `region <region name>` in `HopWindow.server`."""


def _sketch_in(v: Any) -> Sketch:
    return v if isinstance(v, Sketch) else Sketch.from_dict(v)


_SketchField = Annotated[Sketch, PlainValidator(_sketch_in), PlainSerializer(lambda s: s.to_dict())]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class HopWindow(_Model):
    """One window of send time: the clients' counts and each server piece's."""

    start_s: float
    client: dict[str, int] = Field(default_factory=dict)
    server: dict[str, dict[str, int]] = Field(default_factory=dict)
    """Piece (`edge`, `region ap-southeast-1`) → hop → count."""


class LegWindow(_Model):
    start_s: float
    legs: dict[str, _SketchField] = Field(default_factory=dict)
    """Leg (metrics.DELIVERY_LEGS) → latency sketch of the deliveries sent in this window, ms."""


class HopLoss(_Model):
    hop: str
    count: int
    unit: str = "deliveries"
    """`messages` for the change feed (a message not emitted misses all its recipients), else `deliveries`."""
    text: str


class Attribution(_Model):
    start_s: float | None = None
    """The window; None for the whole run."""
    expected: int
    lost: int
    first_hop: str | None = None
    """The first hop that fell short; None when none did, or the target has no server-side counts."""
    losses: list[HopLoss] = Field(default_factory=list)
    text: str


class DeliveryHops(_Model):
    windows: list[HopWindow] = Field(default_factory=list)
    legs: list[LegWindow] = Field(default_factory=list)
    server_pieces: list[str] = Field(default_factory=list)
    """Pieces whose counts were fetched; empty when the target exposes none (then see `server_note`)."""
    server_note: str = ""
    attribution: list[Attribution] = Field(default_factory=list)
    """The whole run first, then each window where a delivery was lost or a hop fell short."""


# ---- attribution ----


@dataclass
class _Totals:
    client: dict[str, int]
    feed: int
    fanout: int
    written: int
    relayed: int | None
    regions: dict[str, int]
    fault_dropped: int


def _totals(windows: list[HopWindow]) -> _Totals:
    client: dict[str, int] = {}
    regions: dict[str, dict[str, int]] = {}
    edge: dict[str, int] | None = None
    for window in windows:
        for hop, n in window.client.items():
            client[hop] = client.get(hop, 0) + n
        for piece, counts in window.server.items():
            if piece == EDGE_PIECE:
                edge = edge if edge is not None else {}
                into = edge
            else:
                into = regions.setdefault(piece, {})
            for hop, n in counts.items():
                into[hop] = into.get(hop, 0) + n
    merged: dict[str, int] = {}
    for counts in regions.values():
        for hop, n in counts.items():
            merged[hop] = merged.get(hop, 0) + n
    fault = merged.get(hc.FAULT_DROPPED, 0) + (edge or {}).get(hc.FAULT_DROPPED, 0) + client.get(hc.FAULT_DROPPED, 0)
    return _Totals(
        client=client,
        feed=max((c.get(hc.FEED, 0) for c in regions.values()), default=0),
        fanout=merged.get(hc.FANOUT, 0),
        written=merged.get(hc.WRITTEN, 0),
        relayed=edge.get(hc.RELAYED, 0) if edge is not None else None,
        regions=merged,
        fault_dropped=fault,
    )


def _written_text(n: int, regions: dict[str, int]) -> str:
    sockets = regions.get(hc.SLOW_SOCKETS, 0)
    labels = ((hc.DROPPED_SLOW, "slow socket"), (hc.DROPPED_CLOSED, "socket closed"), (hc.WRITE_FAILED, "write failed"))
    reasons = [f"{label} {regions[hop]:,}" for hop, label in labels if regions.get(hop)]
    detail = f"slow-socket drops: {sockets:,} socket{'s' if sockets != 1 else ''}"
    if reasons:
        detail += "; frames lost: " + ", ".join(reasons)
    return f"{n:,} fanned out by the region but never written to the socket ({detail})"


def attribute(windows: list[HopWindow], has_server: bool, start_s: float | None = None) -> Attribution:
    """Where the deliveries of `windows` went missing. `has_server`: the run fetched server-side counts (without
    them only the clients' figures are known, and no hop can be named)."""
    t = _totals(windows)
    c = t.client
    expected, lost = c.get(hc.EXPECTED, 0), c.get(hc.LOST, 0)
    losses: list[HopLoss] = []
    if has_server:
        acked = c.get(hc.ACKED, 0)
        if acked > t.feed:
            losses.append(
                HopLoss(hop=hc.FEED, count=acked - t.feed, unit="messages",
                        text=f"{acked - t.feed:,} acknowledged messages never emitted by the change feed")
            )  # fmt: skip
        base = expected + c.get(hc.UNEXPECTED, 0) + c.get(hc.DUPLICATES, 0)
        chain: list[tuple[str, int]] = [(hc.FANOUT, t.fanout), (hc.WRITTEN, t.written)]
        if t.relayed is not None:
            chain.append((hc.RELAYED, t.relayed))
        chain.append((hc.RECEIVED, c.get(hc.RECEIVED, 0)))
        previous = base
        for hop, count in chain:
            short = previous - count
            previous = count
            if short <= 0:
                continue
            if hop == hc.FANOUT:
                text = f"{short:,} expected by the clients but never queued by the region's fan-out"
            elif hop == hc.WRITTEN:
                text = _written_text(short, t.regions)
            elif hop == hc.RELAYED:
                text = f"{short:,} written by the region but never relayed by the edge"
            else:
                source = "relayed by the edge" if t.relayed is not None else "written by the region"
                text = f"{short:,} {source} but never reached the client's reader"
            losses.append(HopLoss(hop=hop, count=short, text=text))
    first = losses[0].hop if losses else None
    head = f"lost {lost:,} of {expected:,} deliveries"
    if losses:
        text = f"{head}: " + "; ".join(loss.text for loss in losses)
    elif not has_server:
        text = f"{head}, between the insert and the client's reader (the target exposes no per-hop counts)"
    elif lost:
        text = f"{head}, yet every hop counted them (late receipts, or counts missing from a piece)"
    else:
        text = f"no delivery lost ({expected:,} expected, {c.get(hc.DELIVERED, 0):,} delivered)"
    late = c.get(hc.LATE, 0)
    if late:
        text += f"; {late:,} of the lost arrived after the delivery timeout (late, not dropped)"
    if t.fault_dropped:
        text += f" [{t.fault_dropped:,} dropped on purpose by {hc.FAULT_ENV}]"
    return Attribution(start_s=start_s, expected=expected, lost=lost, first_hop=first, losses=losses, text=text)


def in_flight(window: HopWindow) -> int:
    """Deliveries of the window neither received nor declared lost when the run ended (the load stopped while
    they travelled, or before their timeout ran out)."""
    c = window.client
    return max(0, c.get(hc.EXPECTED, 0) - c.get(hc.DELIVERED, 0) - c.get(hc.LOST, 0))


def attribute_all(hops: DeliveryHops) -> list[Attribution]:
    """The whole run, then every window where a delivery was lost or a hop fell short. Windows with deliveries
    still in flight at the end are left out: their frames were counted by the servers but never could arrive."""
    has_server = bool(hops.server_pieces)
    settled = [w for w in hops.windows if not in_flight(w)]
    whole = attribute(settled, has_server)
    left_out = len(hops.windows) - len(settled)
    if left_out:
        pending = sum(in_flight(w) for w in hops.windows)
        whole.text += f" ({left_out} window(s) with {pending:,} deliveries still in flight at the end left out)"
    out = [whole]
    for window in settled:
        one = attribute([window], has_server, window.start_s)
        if one.lost or one.losses:
            out.append(one)
    return out


# ---- server buckets → windows ----


def fold_server(
    windows: list[HopWindow], piece: str, buckets: list[dict[str, Any]], window_s: float
) -> list[HopWindow]:
    """Add a piece's `{"t_s", "counts"}` buckets (Unix seconds of the send) into the windows of `window_s`."""
    by_start = {w.start_s: w for w in windows}
    for bucket in buckets:
        t_s, counts = bucket.get("t_s"), bucket.get("counts")
        if not isinstance(t_s, int | float) or not isinstance(counts, dict):
            continue
        start = (t_s // window_s) * window_s
        window = by_start.get(start)
        if window is None:
            window = by_start[start] = HopWindow(start_s=start)
        into = window.server.setdefault(piece, {})
        for hop, n in counts.items():
            if isinstance(n, int):
                into[str(hop)] = into.get(str(hop), 0) + n
    return sorted(by_start.values(), key=lambda w: w.start_s)


# ---- latency legs ----


@dataclass(frozen=True)
class LegRow:
    leg: str
    count: int
    p50_ms: float | None
    p95_ms: float | None
    mean_ms: float | None
    share_pct: float | None
    """This leg's part of the mean delivery latency (the legs' means add up to the mean exactly)."""


def leg_sketches(hops: DeliveryHops, start_s: float | None = None, end_s: float | None = None) -> dict[str, Sketch]:
    """Each leg's sketch merged over the windows starting in [start_s, end_s) (all by default)."""
    merged: dict[str, Sketch] = {}
    for window in hops.legs:
        if (start_s is not None and window.start_s < start_s) or (end_s is not None and window.start_s >= end_s):
            continue
        for leg, sketch in window.legs.items():
            merged.setdefault(leg, Sketch()).merge(sketch)
    return merged


def leg_rows(sketches: dict[str, Sketch]) -> list[LegRow]:
    """One row per leg, in path order, with its share of the mean delivery latency."""
    total = sum(s.sum_ms for s in sketches.values())
    rows = []
    for leg in [*DELIVERY_LEGS, *sorted(set(sketches) - set(DELIVERY_LEGS))]:
        sketch = sketches.get(leg)
        if sketch is None or not sketch.count:
            continue
        p50, p95 = sketch.quantiles([0.5, 0.95])
        share = 100.0 * sketch.sum_ms / total if total > 0 else None
        rows.append(LegRow(leg, sketch.count, p50, p95, sketch.mean_ms, share))
    return rows


def dominant_leg(rows: list[LegRow]) -> LegRow | None:
    """The leg with the largest p95 (where the slow deliveries spend their time)."""
    with_p95 = [r for r in rows if r.p95_ms is not None]
    return max(with_p95, key=lambda r: r.p95_ms or 0.0) if with_p95 else None
