"""`harness capacity`'s report: capacity.json, capacity.md, capacity.svg (p95 and error rate against the level, the
knee marked) and capacity.html (the table and the chart in one file). Only the final writes do I/O.

    CapacityVerdict ─► to_json ─► capacity.json
                    ─► markdown ─► capacity.md   (sustainable level, p95, errors; one row per step; why it stopped)
                    ─► svg      ─► capacity.svg  (matplotlib, Agg canvas, as report/charts.py)
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.gates.capacity import CapacityVerdict, StepOutcome
from harness.gates.verdict import fmt
from harness.model.capacity import CapacityPlan

JSON_FILE = "capacity.json"
MARKDOWN_FILE = "capacity.md"
SVG_FILE = "capacity.svg"
HTML_FILE = "capacity.html"


def _step_json(s: StepOutcome) -> dict[str, Any]:
    return {
        "step": s.index + 1,
        "level": s.level,
        "status": s.status,
        "start_s": s.start_s,
        "end_s": s.end_s,
        "rps": s.rps,
        "p95_ms": s.p95_ms,
        "error_pct": s.error_pct,
        "iterations_per_s": s.iterations_per_s,
        "dropped_pct": s.dropped_pct,
        "reasons": s.reasons,
    }


def to_json(verdict: CapacityVerdict, plan: CapacityPlan, profile: str) -> dict[str, Any]:
    sus, brk = verdict.sustainable, verdict.breaking
    return {
        "profile": profile,
        "mode": plan.mode,
        "unit": plan.unit,
        "levels": list(plan.levels),
        "hold_s": plan.hold_s,
        "settle_s": plan.settle_s,
        "exit_code": verdict.exit_code,
        "sustainable": _step_json(sus) if sus else None,
        "breaking": _step_json(brk) if brk else None,
        "stopped_by": verdict.stopped_by,
        "steps": [_step_json(s) for s in verdict.steps],
    }


def headline(verdict: CapacityVerdict, plan: CapacityPlan) -> str:
    sus = verdict.sustainable
    if sus is None:
        first = "the first step" if verdict.breaking is None else f"step 1 ({fmt(verdict.breaking.level, plan.unit)})"
        return f"no sustainable {plan.mode}: {first} did not pass ({verdict.stopped_by})"
    figures = f"p95 {fmt(sus.p95_ms, 'ms')}, errors {fmt(sus.error_pct, '%')}"
    text = f"sustainable {plan.mode}: {fmt(sus.level, plan.unit)} ({figures})"
    brk = verdict.breaking
    if brk is None:
        return f"{text}; every step up to --max passed, so the limit is higher"
    if brk.status == "invalid":
        return f"{text}; the search stopped at {fmt(brk.level, plan.unit)}, which was invalid (not a target failure)"
    return f"{text}; the first gate broke at {fmt(brk.level, plan.unit)}"


def markdown(verdict: CapacityVerdict, plan: CapacityPlan, profile: str) -> str:
    lines = [
        f"# Capacity: {profile}",
        "",
        f"**{headline(verdict, plan)}**",
        "",
        f"Steps of {plan.hold_s:g} s, the first {plan.settle_s:g} s of each (or its users' ramp) left out. "
        f"Stopped: {verdict.stopped_by}.",
        "",
        f"| step | {plan.unit} | status | rps | p95 | errors | iterations/s | dropped |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in verdict.steps:
        mark = " (knee)" if s is verdict.breaking else " (sustainable)" if s is verdict.sustainable else ""
        lines.append(
            f"| {s.index + 1} | {fmt(s.level)}{mark} | {s.status} | {fmt(s.rps)} | {fmt(s.p95_ms, 'ms')} | "
            f"{fmt(s.error_pct, '%')} | {fmt(s.iterations_per_s)} | {fmt(s.dropped_pct, '%')} |"
        )
    if verdict.breaking is not None:
        lines += ["", f"Step {verdict.breaking.index + 1}:", ""]
        lines += [f"- {r}" for r in verdict.breaking.reasons]
    lines += ["", f"![p95 and error rate against {plan.unit}]({SVG_FILE})", ""]
    return "\n".join(lines)


def svg(verdict: CapacityVerdict, plan: CapacityPlan) -> str:
    fig = Figure(figsize=(9.0, 3.6))
    ax = fig.add_subplot()
    ax.set_title(f"p95 and error rate against {plan.unit}", fontsize=10)
    ax.grid(True, alpha=0.3)
    steps = verdict.steps
    xs = [s.level for s in steps]
    ax.plot(
        xs, [s.p95_ms if s.p95_ms is not None else float("nan") for s in steps], "o-", color="tab:blue", label="p95 ms"
    )
    ax.set_xlabel(plan.unit)
    ax.set_ylabel("p95 (ms)")
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    errors = [s.error_pct if s.error_pct is not None else float("nan") for s in steps]
    ax2.plot(xs, errors, "s--", color="tab:red", label="errors %")
    ax2.set_ylabel("errors (%)")
    ax2.set_ylim(bottom=0)
    for s in steps:
        if s.status == "invalid":
            ax.annotate("invalid", (s.level, s.p95_ms or 0), fontsize=7, color="grey")
    if verdict.sustainable is not None:
        ax.axvline(verdict.sustainable.level, color="tab:green", linestyle=":", label="sustainable")
    if verdict.breaking is not None:
        ax.axvline(verdict.breaking.level, color="tab:red", linestyle="-", alpha=0.6, label="knee (first break)")
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
    ax.legend(lines, labels, loc="upper left", fontsize=8)
    FigureCanvasAgg(fig)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    return buf.getvalue()


def write(out_dir: Path, verdict: CapacityVerdict, plan: CapacityPlan, profile: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    chart = svg(verdict, plan)
    md = markdown(verdict, plan, profile)
    paths = {"json": out_dir / JSON_FILE, "md": out_dir / MARKDOWN_FILE, "svg": out_dir / SVG_FILE}
    paths["json"].write_text(json.dumps(to_json(verdict, plan, profile), indent=2) + "\n", encoding="utf-8")
    paths["md"].write_text(md, encoding="utf-8")
    paths["svg"].write_text(chart, encoding="utf-8")
    paths["html"] = out_dir / HTML_FILE
    body = chart[chart.find("<svg") :]
    paths["html"].write_text(
        "<!doctype html><meta charset='utf-8'><title>capacity</title>"
        f"<h1>Capacity: {html.escape(profile)}</h1><p><b>{html.escape(headline(verdict, plan))}</b></p>"
        f"<pre>{html.escape(md)}</pre>{body}",
        encoding="utf-8",
    )
    return paths
