"""A drill's reports, in one folder: `write_drill_reports` is the one entry point.

    DrillResult ─┬─> drill.json     result.as_dict()
                 ├─> timeline.png   writes/s, error %, p95, lag; the fault and every DR step marked (drill_chart)
                 ├─> junit.xml      one testcase per measure and phase, and drill_valid (drill_junit)
                 ├─> summary.md     verdict, measures, events, phases (drill_text)
                 ├─> report.html    the same with the timeline embedded, self-contained (drill_html)
                 └─> recovery.md    the recovery drill only: the monthly recovery test record (drill_text)

Everything is rendered before the first file is written; the writes are the only side effect.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.model.drill import DrillResult
from harness.report.drill_chart import timeline_png
from harness.report.drill_html import render_drill_html
from harness.report.drill_junit import render_drill_junit
from harness.report.drill_text import render_drill_summary, render_recovery_record

__all__ = ["write_drill_reports"]


def write_drill_reports(result: DrillResult, out_dir: str | Path) -> dict[str, Path]:
    """Writes the drill's reports into `out_dir` (created if missing); returns name -> path.

    Names: json, timeline, junit, summary, html, and recovery for the recovery drill.
    """
    png = timeline_png(result)
    texts = {
        "json": ("drill.json", json.dumps(result.as_dict(), indent=2) + "\n"),
        "junit": ("junit.xml", render_drill_junit(result)),
        "summary": ("summary.md", render_drill_summary(result)),
        "html": ("report.html", render_drill_html(result, png)),
    }
    if result.drill == "recovery":
        texts["recovery"] = ("recovery.md", render_recovery_record(result))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"timeline": out / "timeline.png"}
    paths["timeline"].write_bytes(png)
    for key, (name, text) in texts.items():
        paths[key] = out / name
        paths[key].write_text(text, encoding="utf-8")
    return paths
