"""summary.md (also appended to $GITHUB_STEP_SUMMARY) and the plain-text gate table `harness gate` prints."""

from __future__ import annotations

from datetime import UTC, datetime

from harness.gates.verdict import GateResult, Verdict, fmt
from harness.model.result import Result, process_cpu_means
from harness.report.china import china_sections
from harness.report.compare import Change
from harness.report.hops import hops_section
from harness.report.sections import Section, to_markdown
from harness.report.series import GroupRow, group_rows, request_rows
from harness.report.tail import tail_sections

STATUS_MARK = {"passed": "✅ passed", "failed": "❌ failed", "invalid": "⚠️ invalid"}
STATUS_WORD = {"passed": "PASS", "failed": "FAIL", "invalid": "INVALID"}


def observed_text(g: GateResult) -> str:
    if g.observed is None:
        return "n/a"
    text = fmt(g.observed, g.unit)
    return f"{text} ±{fmt(g.bound, g.unit)}" if g.bound is not None else text


def threshold_text(g: GateResult) -> str:
    return f"{g.comparison} {fmt(g.threshold, g.unit)}".strip() if g.threshold is not None else ""


def render_text(verdict: Verdict) -> str:
    """Terminal table: one line per gate, then the verdict."""
    width = max((len(g.name) for g in verdict.gates), default=4)
    lines = [f"{STATUS_WORD[g.status]:<8}{g.name:<{width + 2}}{g.reason}" for g in verdict.gates]
    lines.append(f"verdict: {verdict.status} (exit {verdict.exit_code})")
    return "\n".join(lines) + "\n"


def _when(t_s: float) -> str:
    return datetime.fromtimestamp(t_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows_table(title: str, rows: list[GroupRow], with_network: bool) -> list[str]:
    head = f"| {title} | requests | rps | p50 | p95 | p99 | errors |" + (" network |" if with_network else "")
    sep = "|---" * (8 if with_network else 7) + "|"
    out = [head, sep]
    for r in rows:
        cells = [
            _md(r.label),
            f"{r.requests:,}",
            fmt(r.rps, "rps"),
            fmt(r.p50_ms, "ms"),
            fmt(r.p95_ms, "ms"),
            fmt(r.p99_ms, "ms"),
            fmt(r.error_pct, "%"),
        ]
        if with_network:
            cells.append(_md(r.network))
        out.append("| " + " | ".join(cells) + " |")
    return out


def breakdown_sections(result: Result, exclude: list[str]) -> list[Section]:
    """Where the time went: the China explanation (runs with shaped groups), the p95's top contributors, legs."""
    return [*china_sections(result, exclude), *tail_sections(result, exclude)]


def render_summary(
    result: Result,
    verdict: Verdict,
    exclude: list[str],
    changes: list[Change] | None = None,
    base_id: str | None = None,
) -> str:
    run = result.run
    lines = [f"## harness {run.profile}: {STATUS_MARK[verdict.status]} (exit {verdict.exit_code})", ""]
    ss = run.steady_state
    plateau = f"{ss.start_s - run.started_s:g}–{ss.end_s - run.started_s:g} s" if ss is not None else "whole run"
    lines.append(
        f"Run `{run.run_id}` · target {_md(run.target)} · {_when(run.started_s)} · {run.duration_s:.0f} s · "
        f"workers {run.workers_seen}/{run.workers_expected} · steady state {plateau}"
        + (" · **partial run**" if run.partial else "")
    )
    lines += ["", "| gate | status | observed | threshold | reason |", "|---|---|---|---|---|"]
    for g in verdict.gates:
        cells = [_md(g.name), STATUS_MARK[g.status], observed_text(g), _md(threshold_text(g)), _md(g.reason)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "### Steady state by group", "", *_rows_table("group", group_rows(result, exclude), True)]
    lines += ["", "### Steady state by request name", "", *_rows_table("request", request_rows(result), False)]
    for section in breakdown_sections(result, exclude):
        lines += to_markdown(section)
    lines += _hops_md(result)
    lines += _cpu_table(result)
    if changes is not None:
        lines += ["", f"### Compared with `{base_id}`", ""]
        regressions = [c for c in changes if c.regressed]
        lines.append(f"{len(regressions)} regression(s)." if regressions else "No regressions.")
        lines += ["", "| metric | base | current | change | |", "|---|---|---|---|---|"]
        for c in changes:
            pct = c.change_pct
            change = "n/a" if pct is None else f"{pct:+.1f} %"
            mark = "⚠️ regression" if c.regressed else ""
            lines.append(f"| {_md(c.metric)} | {fmt(c.base, c.unit)} | {fmt(c.current, c.unit)} | {change} | {mark} |")
    return "\n".join(lines) + "\n"


def _cpu_table(result: Result) -> list[str]:
    """Where the CPU went in the steady state, per process role: tells a generator limit from a target limit."""
    means = process_cpu_means(result)
    if not means:
        return []
    machine = means.pop("machine", None)
    out = ["", "### CPU by process (steady state, % of one core)", "", "| process | CPU |", "|---|---|"]
    out += [f"| {_md(role)} | {pct:.0f} % |" for role, pct in means.items()]
    if machine is not None:
        out.append(f"| whole machine (all cores) | {machine:.0f} % |")
    return out


def _hops_md(result: Result) -> list[str]:
    """Delivery by hop: the attribution, the counts per hop and the latency legs (docs/delivery.md)."""
    section = hops_section(result)
    if section is None:
        return []
    lines = ["", "### Delivery by hop", "", _md(section.attribution)]
    if section.windows:
        lines += ["", *(f"- {_md(w)}" for w in section.windows)]
    if section.server_note:
        lines += ["", _md(section.server_note)]
    lines += ["", "| hop | counted by | count |", "|---|---|---|"]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in section.hop_rows]
    if section.leg_rows:
        lines += ["", "| delivery leg | deliveries | p50 | p95 | mean | share of mean |", "|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in section.leg_rows]
        lines += ["", _md(section.leg_note)]
    return lines
