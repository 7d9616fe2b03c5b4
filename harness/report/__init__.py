"""Reports from a result: junit.xml, summary.md, report.html (and a copy of result.json) in one folder.

`write_reports` is the one entry point; everything it calls is pure except the final file writes.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.gates.verdict import Verdict, evaluate, totals_excluded
from harness.model.profile import GatesConfig
from harness.model.result import Result, dump_result
from harness.report import charts
from harness.report.compare import compare
from harness.report.html import render_html
from harness.report.junit import render_junit
from harness.report.series import group_rows, request_rows, series
from harness.report.summary import render_summary, render_text

__all__ = ["render_text", "write_reports"]


def write_reports(
    result: Result,
    out_dir: str | Path,
    *,
    verdict: Verdict | None = None,
    base: Result | None = None,
    step_summary: str | Path | None = None,
    write_result: bool = True,
) -> dict[str, Path]:
    """Writes the report files into `out_dir`; appends summary.md to `step_summary` (a $GITHUB_STEP_SUMMARY path)."""
    cfg = result.gates or GatesConfig()
    verdict = verdict or evaluate(result, cfg)
    exclude = totals_excluded(cfg)  # the same totals as the gates: observations never count
    changes = compare(result, base, exclude) if base is not None else None
    base_id = base.run.run_id if base is not None else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "junit": out / "junit.xml",
        "summary": out / "summary.md",
        "html": out / "report.html",
    }
    summary = render_summary(result, verdict, exclude, changes, base_id)
    paths["junit"].write_text(render_junit(result, verdict), encoding="utf-8")
    paths["summary"].write_text(summary, encoding="utf-8")
    html = render_html(
        result,
        verdict,
        charts.all_charts(series(result, exclude)),
        group_rows(result, exclude),
        request_rows(result),
        changes,
        base_id,
    )
    paths["html"].write_text(html, encoding="utf-8")
    if write_result:
        paths["result"] = dump_result(result, out / "result.json")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as f:
            f.write(summary + os.linesep)
    return paths
