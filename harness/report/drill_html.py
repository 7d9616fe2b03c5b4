"""A drill's report.html: one self-contained page (the load report's CSS, the timeline as a base64 PNG).

    verdict · run line · drill errors · measures · timeline chart · events · phases with their errors

Every text from the result is escaped: error texts quote servers' and child processes' output.
"""

from __future__ import annotations

import base64
from html import escape

from harness.model.drill import DrillResult
from harness.report.drill_text import (
    drill_status,
    failed_names,
    gate_text,
    measure_status,
    measure_verdict,
    seconds_text,
    sorted_events,
    span_s,
    title,
    value_text,
    verdict_text,
    when,
)
from harness.report.html import CSS, html_table

_CSS = CSS + "pre{white-space:pre-wrap;margin:0;font-size:0.9em}\n"


def _errors_list(errors: list[str]) -> str:
    return "<ul>" + "".join(f"<li><pre>{escape(e)}</pre></li>" for e in errors) + "</ul>" if errors else ""


def _phases(result: DrillResult) -> str:
    rows = [
        f'<tr class="{"passed" if p.ok else "failed"}"><td>{escape(p.name)}</td>'
        f"<td>{escape(f'{p.started_t_s:.1f} s')}</td><td>{escape(seconds_text(p.seconds))}</td>"
        f"<td>{'OK' if p.ok else 'FAILED'}</td><td>{_errors_list(p.errors)}</td></tr>"
        for p in result.phases
    ]
    head = "".join(f"<th>{h}</th>" for h in ("phase", "started at", "duration", "result", "errors"))
    return f'<table class="phases"><tr>{head}</tr>{"".join(rows)}</table>'


def render_drill_html(result: DrillResult, timeline_png: bytes) -> str:
    status = drill_status(result)
    png = base64.b64encode(timeline_png).decode("ascii")
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>harness {escape(title(result))} {escape(result.run_id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>harness {escape(title(result))}</h1>",
        f'<p class="verdict {status}">{escape(verdict_text(result))}</p>',
        f"<p>Run <code>{escape(result.run_id)}</code> · target {escape(result.target)} · "
        f"{escape(when(result.started_unix_s))} · {span_s(result):.0f} s · "
        f"synchronous commit: {'yes' if result.synchronous_commit else 'no'}</p>",
    ]
    if result.errors:
        parts += ['<h2 class="invalid">The drill is invalid</h2>', _errors_list(result.errors)]
    if failed := failed_names(result):
        parts.append(f'<p class="failed">Failed: {escape(", ".join(failed))}</p>')
    parts.append("<h2>Measures</h2>")
    parts.append(
        html_table(
            ["measure", "value", "gate", "verdict", "detail"],
            [[m.name, value_text(m), gate_text(m), measure_verdict(m), m.detail] for m in result.measures],
            [measure_status(m) for m in result.measures],
            cls="measures",
        )
    )
    parts += ["<h2>Timeline</h2>", f'<img alt="timeline" src="data:image/png;base64,{png}">']
    parts.append("<h2>Events</h2>")
    parts.append(
        html_table(
            ["t", "kind", "event"],
            [[f"{e.t_s:.1f} s", e.kind, e.label] for e in sorted_events(result)],
            cls="events",
        )
    )
    if result.phases:
        parts += ["<h2>Phases</h2>", _phases(result)]
    parts.append("</body></html>\n")
    return "\n".join(parts)
