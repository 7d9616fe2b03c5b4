"""The delivery-hops section of summary.md and report.html, as plain cells (summary.py and html.py format them).

result.hops ─► attribution (whole run, then windows with a loss) ─► one sentence each
           ─► hop totals over the settled windows: client sent … received, each server piece's counts
           ─► latency legs over the steady state: p50, p95, mean, share of the mean, the leg with the top p95
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from harness.gates.verdict import fmt
from harness.model import hop_counts as hc
from harness.model.hops import dominant_leg, in_flight, leg_rows, leg_sketches
from harness.model.metrics import DELIVERY_LEG_NAMES
from harness.model.result import Result

HOP_ROWS = (
    ("client", hc.SENT, "client: messages about to be inserted"),
    ("client", hc.ACKED, "client: inserts answered 2xx (committed)"),
    ("region", hc.FEED, "region: INSERTs the change feed decoded"),
    ("client", hc.EXPECTED, "client: deliveries expected (message × subscribed recipient)"),
    ("region", hc.FANOUT, "region: frames queued to subscribers"),
    ("region", hc.WRITTEN, "region: frames written to sockets"),
    ("edge", hc.RELAYED, "edge: frames relayed to viewers"),
    ("client", hc.RECEIVED, "client: frames reaching a recipient's reader"),
    ("client", hc.DELIVERED, "client: expected and received"),
    ("client", hc.LOST, "client: not received within the timeout"),
)
MAX_WINDOWS = 10
"""Windows with a loss listed one by one; more are summed up in a line."""


@dataclass
class HopsSection:
    attribution: str
    windows: list[str] = field(default_factory=list)
    hop_rows: list[list[str]] = field(default_factory=list)
    """[hop, where, count]"""
    leg_rows: list[list[str]] = field(default_factory=list)
    """[leg metric, deliveries, p50, p95, mean, share of the mean]"""
    leg_note: str = ""
    server_note: str = ""


def _when(t_s: float) -> str:
    return datetime.fromtimestamp(t_s, UTC).strftime("%H:%M:%S")


def hops_section(result: Result) -> HopsSection | None:
    """None when the run recorded no delivery hops (no message sent, or an older result)."""
    hops = result.hops
    if hops is None:
        return None
    whole = hops.attribution[0].text if hops.attribution else "not attributed (no server counts were collected)"
    section = HopsSection(attribution=whole)
    per_window = [a for a in hops.attribution[1:] if a.start_s is not None]
    for a in per_window[:MAX_WINDOWS]:
        section.windows.append(f"{_when(a.start_s or 0.0)}: {a.text}")
    if len(per_window) > MAX_WINDOWS:
        section.windows.append(f"… and {len(per_window) - MAX_WINDOWS} more window(s) (result.json: hops.attribution)")
    settled = [w for w in hops.windows if not in_flight(w)]
    client: dict[str, int] = {}
    pieces: dict[str, dict[str, int]] = {}
    for window in settled:
        for hop, n in window.client.items():
            client[hop] = client.get(hop, 0) + n
        for piece, counts in window.server.items():
            into = pieces.setdefault(piece, {})
            for hop, n in counts.items():
                into[hop] = into.get(hop, 0) + n
    for where, hop, label in HOP_ROWS:
        if where == "client":
            if hop in client or hop in (hc.SENT, hc.EXPECTED, hc.RECEIVED):
                section.hop_rows.append([hop, label, f"{client.get(hop, 0):,}"])
            continue
        for piece in sorted(p for p in pieces if p.startswith(where)):
            if hop in pieces[piece] or hop != hc.RELAYED:
                section.hop_rows.append([hop, f"{piece}: {label.partition(': ')[2]}", f"{pieces[piece].get(hop, 0):,}"])
    if not hops.server_pieces:
        section.server_note = f"No server-side hop counts: {hops.server_note or 'the target exposes none'}."
    elif hops.server_note:
        section.server_note = f"Some pieces gave no counts: {hops.server_note}."
    ss = result.run.steady_state
    sketches = leg_sketches(hops, ss.start_s, ss.end_s) if ss is not None else leg_sketches(hops)
    rows = leg_rows(sketches)
    for r in rows:
        section.leg_rows.append([
            DELIVERY_LEG_NAMES.get(r.leg, r.leg), f"{r.count:,}", fmt(r.p50_ms, "ms"), fmt(r.p95_ms, "ms"),
            fmt(r.mean_ms, "ms"), fmt(r.share_pct, "%"),
        ])  # fmt: skip
    top = dominant_leg(rows)
    if top is not None:
        span = "the steady state" if ss is not None else "the whole run"
        section.leg_note = (
            f"Over {span}, the largest p95 is {DELIVERY_LEG_NAMES.get(top.leg, top.leg)} ({fmt(top.p95_ms, 'ms')}, "
            f"{fmt(top.share_pct, '%')} of the mean delivery latency)."
        )
    return section
