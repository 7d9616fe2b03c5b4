"""China, explained: for each shaped group, its p95 attributed to requests and legs, beside what its network
profile predicts (harness/model/network_predict.py), with the gap named.

    result.run.networks (what the path applied) ─┐
    steady parts of the shaped group ────────────┼─► per name: predicted vs measured p50/p95, gap
    steady parts of the baseline group ──────────┘   p95 tail: handshakes · toxics (latency, bandwidth) ·
                                                     edge + origin (the baseline's same request) · queueing/other
                                                   ─► one sentence: measured vs predicted, and what makes the tail
"""

from __future__ import annotations

from harness.gates.verdict import fmt
from harness.model.breakdown import CONNECT_EVENTS, Contributor, Part, merged, steady_parts, top_contributors
from harness.model.network_predict import Prediction, group_p95, predict
from harness.model.result import NetworkConditions, Result
from harness.report.sections import Section, Table

SATURATED_CPU_PCT = 90.0


def _baseline_of(result: Result, group: str) -> str | None:
    cfg = result.gates
    for d in cfg.delta if cfg is not None else []:
        if d.group == group:
            return d.baseline
    others = [g for g in result.run.groups if g not in result.run.networks]
    return others[0] if others else None


def _path_text(net: NetworkConditions) -> str:
    bw = []
    if net.down_kbps:
        bw.append(f"{net.down_kbps / 1000:g} Mbps down")
    if net.up_kbps:
        bw.append(f"{net.up_kbps / 1000:g} Mbps up")
    loss = f"loss {net.loss_pct:g} % " + ("applied (--kernel)" if net.loss_applied else "not applied (no --kernel)")
    return f"RTT {net.rtt_ms:g} ms ± {net.jitter_ms:g} ms, {', '.join(bw) or 'no bandwidth cap'}, {loss}"


def china_sections(result: Result, exclude: list[str]) -> list[Section]:
    if not result.run.networks:
        return []
    parts = steady_parts(result, exclude)
    return [_section(result, parts, g, net) for g, net in sorted(result.run.networks.items())]


def _section(result: Result, parts: dict[tuple[str, str], Part], group: str, net: NetworkConditions) -> Section:
    baseline = _baseline_of(result, group)
    # Names whose client times legs, and websocket connects: others (broadcasts, pings) wait for no round trip
    # the way a request does, so no per-request prediction applies to them.
    everything = [p for (g, _), p in sorted(parts.items()) if g == group]
    mine = [p for p in everything if p.legs is not None or CONNECT_EVENTS.get(p.name) == p.request_type]
    others = [p for p in everything if p not in mine]
    bases = {n: p for (g, n), p in parts.items() if g == baseline}
    title = f"China, explained: group {group} on {net.profile}"
    whole = merged(everything)  # the same samples as the group's p95 gate
    measured = whole.sketch.quantile(0.95)
    if measured is None:
        return Section(title, [f"No successful samples in group {group}'s steady state."])
    predicted = group_p95(mine, bases, net, others)
    preds = sorted((predict(p, bases.get(p.name), net) for p in mine), key=lambda x: -x.requests)
    by_name = {p.name: p for p in preds}
    tail = top_contributors(parts, group=group, limit=5)
    attribution = []
    for c in tail.contributors:
        pred = by_name.get(c.name)
        t = c.tail
        if t is None or pred is None:
            continue
        latency = 0.0 if pred.kind == "websocket" else net.rtt_ms  # a websocket's round trips are its connect leg
        origin = pred.server_p95_ms or 0.0
        other = t.total_ms - t.connect_ms - latency - pred.transfer_ms - origin
        attribution.append(
            [c.name, fmt(c.share_pct, "%"), fmt(t.total_ms, "ms"), fmt(t.connect_ms, "ms"), fmt(latency, "ms"),
             fmt(pred.transfer_ms, "ms"), fmt(origin, "ms") if pred.server_p95_ms is not None else "n/a",
             fmt(other, "ms")]
        )  # fmt: skip
    finding = _finding(group, measured, predicted, net, tail.contributors[0] if tail.contributors else None, by_name)
    gap = _gap(result, group, baseline, measured, predicted, preds, net)
    rows = [
        [p.name, p.kind, f"{p.requests:,}", fmt(p.measured_p50_ms, "ms"), fmt(p.p50_ms, "ms"),
         fmt(p.measured_p95_ms, "ms"), fmt(p.p95_ms, "ms"), f"{p.round_trips_p50:g}", fmt(p.transfer_ms, "ms"),
         fmt(p.loss_hit_pct, "%"), fmt(p.gap_p95_ms, "ms")]
        for p in preds
    ]  # fmt: skip
    tables = [
        Table(["request", "kind", "requests", "p50", "predicted p50", "p95", "predicted p95", "round trips",
               "transfer", "meets a loss", "p95 gap"], rows),
    ]  # fmt: skip
    if attribution:
        tables.append(
            Table(["tail request", "share of tail", "tail mean", "handshakes (connect)", "toxic latency",
                   "toxic bandwidth", f"edge + origin ({baseline} p95)", "queueing / other"], attribution)
        )  # fmt: skip
    notes = [
        f"Path: {_path_text(net)}; stalls {net.stall_pct:g} % of connections for {net.stall_ms / 1000:g} s "
        "(they end as errors, not latency).",
        "Prediction: baseline (edge + origin) + round trips × RTT + bytes over the bandwidth, + an RTO (≥ 200 ms) "
        "when a loss is likely; docs/china.md explains the model.",
    ]
    return Section(title, [finding, gap], tables, notes)


def _finding(
    group: str,
    measured: float,
    predicted: float | None,
    net: NetworkConditions,
    lead: Contributor | None,
    by_name: dict[str, Prediction],
) -> str:
    text = f"Group {group}'s p95 is {fmt(measured, 'ms')}; its network ({_path_text(net)}) predicts "
    text += (
        f"{fmt(predicted, 'ms')} (uploads and downloads at their mean size)."
        if predicted is not None
        else "n/a (no baseline group to start from)."
    )
    if lead is not None:
        pred = by_name.get(lead.name)
        text += f" {fmt(lead.share_pct, '%')} of the samples above the p95 are `{lead.name}`"
        if lead.tail is not None:
            text += f", whose tail time is mostly its {lead.tail.dominant} leg ({fmt(_leg(lead), 'ms')} of "
            text += f"{fmt(lead.tail.total_ms, 'ms')})"
            if lead.tail.dominant == "body" and pred is not None and pred.transfer_ms > 0:
                cap = f"{net.down_kbps or 0:g} kbps"
                text += f": the {cap} downstream cap (transfer predicted {fmt(pred.transfer_ms, 'ms')})"
        text += "."
    return text


def _leg(c: Contributor) -> float:
    t = c.tail
    if t is None:
        return 0.0
    return float({"connect": t.connect_ms, "wait": t.wait_ms, "body": t.body_ms}[t.dominant])


def _gap(
    result: Result,
    group: str,
    baseline: str | None,
    measured: float,
    predicted: float | None,
    preds: list[Prediction],
    net: NetworkConditions,
) -> str:
    if predicted is None:
        return "No baseline group: the prediction has no edge + origin time to start from."
    gap = measured - predicted
    cpu = max((s.cpu_pct for s in result.cpu), default=None)
    busy = cpu is not None and cpu > SATURATED_CPU_PCT
    worst = max((p for p in preds if p.gap_p95_ms is not None), key=lambda p: p.gap_p95_ms or 0.0, default=None)
    # below half its round trips at p50: the path's latency cannot be in it
    unshaped = [
        p for p in preds
        if p.measured_p50_ms is not None and p.measured_p50_ms < 0.5 * p.round_trips_p50 * net.rtt_ms
    ]  # fmt: skip
    text = f"Measured minus predicted p95: {fmt(gap, 'ms')}."
    if worst is not None and worst.kind in ("upload", "download") and (worst.gap_p95_ms or 0) > 0:
        text += (
            f" The largest gap is `{worst.name}` (+{fmt(worst.gap_p95_ms, 'ms')} at p95): its sizes vary and the "
            f"prediction uses the mean ({fmt(worst.transfer_ms, 'ms')} of transfer), so its tail is the large files."
        )
    elif worst is not None and worst.gap_p95_ms is not None and worst.gap_p95_ms > 0:
        text += (
            f" The largest gap is `{worst.name}` (+{fmt(worst.gap_p95_ms, 'ms')} at p95): time the network does not "
            "explain is queueing — at the target (the baseline's own tail shows it too), in the proxy, or in the "
            "generator"
        )
        text += f" (its CPU peaked at {fmt(cpu, '%')})." if cpu is not None and busy else (
            f"; the generator was not saturated (CPU peak {fmt(cpu, '%')})." if cpu is not None else "."
        )  # fmt: skip
    for p in unshaped:
        text += (
            f" `{p.name}` is faster than its round trips allow (p50 {fmt(p.measured_p50_ms, 'ms')}, "
            f"{p.round_trips_p50:g} × RTT = {fmt(p.round_trips_p50 * net.rtt_ms, 'ms')}): that traffic did not cross "
            "the shaped path."
        )
    if net.loss_pct > 0 and not net.loss_applied:
        text += " Loss was not applied, so the p95 is optimistic; with --kernel expect retransmission timeouts."
    return text
