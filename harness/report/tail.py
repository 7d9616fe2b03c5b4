""" "Where the p95 goes": the top contributors to the p95 (overall and per group) and the legs per request name.

result ─► model/breakdown.steady_parts ─► top_contributors (overall, each group) ─► one table each
                                       └► leg_rows ─► connect / wait / body medians, connection reuse
"""

from __future__ import annotations

from harness.gates.verdict import fmt
from harness.model.breakdown import Contributor, leg_rows, steady_parts, top_contributors
from harness.model.result import Result, groups_of
from harness.report.sections import Section, Table

TOP = 5

CONTRIBUTOR_HEAD = ["request", "share of tail", "above p95", "p95", "tail mean", "tail: connect / wait / body",
                    "slow leg", "medians: connect / wait / body", "reused"]  # fmt: skip


def _contributor_row(c: Contributor) -> list[str]:
    t = c.tail
    legs = "n/a" if t is None else f"{fmt(t.connect_ms, 'ms')} / {fmt(t.wait_ms, 'ms')} / {fmt(t.body_ms, 'ms')}"
    medians = "n/a" if c.wait_p50_ms is None else (
        f"{fmt(c.connect_p50_ms, 'ms') if c.connect_p50_ms is not None else '–'} / {fmt(c.wait_p50_ms, 'ms')} / "
        f"{fmt(c.body_p50_ms, 'ms')}"
    )  # fmt: skip
    return [
        c.name, fmt(c.share_pct, "%"), f"{c.above:,}", fmt(c.p95_ms, "ms"),
        fmt(t.total_ms, "ms") if t is not None else "n/a", legs, t.dominant if t is not None else "n/a", medians,
        fmt(c.reuse_pct, "%"),
    ]  # fmt: skip


def tail_sections(result: Result, exclude: list[str]) -> list[Section]:
    parts = steady_parts(result, exclude)
    if not parts:
        return []
    groups = groups_of(result)
    scopes: list[tuple[str, str | None]] = [("all groups", None)]
    if len(groups) > 1:
        scopes += [(f"group {g}", g) for g in groups]
    tables, lines = [], []
    for label, group in scopes:
        tail = top_contributors(parts, group=group, limit=TOP)
        if tail.threshold_ms is None or not tail.contributors:
            continue
        lead = tail.contributors[0]
        leg = f", mostly in its {lead.tail.dominant} leg" if lead.tail is not None else ""
        lines.append(
            f"{label}: p95 {fmt(tail.threshold_ms, 'ms')}; {tail.above:,} of {tail.samples:,} samples lie above it, "
            f"{fmt(lead.share_pct, '%')} of them `{lead.name}`{leg}."
        )
        tables.append(Table([label, *CONTRIBUTOR_HEAD[1:]], [_contributor_row(c) for c in tail.contributors]))
    if not tables:
        return []
    out = [
        Section(
            "Top contributors to the p95",
            lines,
            tables,
            [
                "The tail is the steady state's samples above the p95; a request's share is its part of them. "
                "Legs: connect (DNS + TCP + TLS on a new connection, a websocket's upgrade), wait (send, server, "
                "first byte), body (the rest); their tail means are over the samples near and above the p95.",
            ],
        )
    ]
    rows = [
        [r.group, r.name, f"{r.requests:,}", fmt(r.p50_ms, "ms"), fmt(r.p95_ms, "ms"),
         fmt(r.connect_p50_ms, "ms") if r.connect_p50_ms is not None else "–", fmt(r.wait_p50_ms, "ms"),
         fmt(r.wait_p95_ms, "ms"), fmt(r.body_p50_ms, "ms"), fmt(r.body_p95_ms, "ms"), f"{r.new_connections:,}",
         fmt(r.reuse_pct, "%")]
        for r in leg_rows(parts)
    ]  # fmt: skip
    if rows:
        head = ["group", "request", "requests", "p50", "p95", "connect p50", "wait p50", "wait p95", "body p50",
                "body p95", "new connections", "reused"]  # fmt: skip
        out.append(Section("Request legs by group and name", tables=[Table(head, rows)]))
    return out
