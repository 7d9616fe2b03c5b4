"""report.html: one self-contained file (inline CSS, charts as base64 PNG), readable offline and as a CI artifact."""

from __future__ import annotations

from html import escape

from harness.gates.verdict import Verdict, fmt, totals_excluded
from harness.model.profile import GatesConfig
from harness.model.result import Result
from harness.report.compare import Change
from harness.report.hops import hops_section
from harness.report.sections import to_html
from harness.report.series import GroupRow
from harness.report.summary import STATUS_MARK, breakdown_sections, observed_text, threshold_text

# Shared with drill_html.py.
CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}
table{border-collapse:collapse;margin:1em 0;width:100%}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f4f4f4}.passed{color:#1a7f37}.failed{color:#cf222e}.invalid{color:#9a6700}
.verdict{font-size:1.4em;font-weight:bold}img{max-width:100%}
"""


def html_table(head: list[str], rows: list[list[str]], row_classes: list[str] | None = None, cls: str = "") -> str:
    """A table with every cell escaped; `row_classes` colour rows (passed, failed, invalid). Shared with drill_html."""
    out = [f'<table class="{cls}"><tr>' + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    for i, row in enumerate(rows):
        rc = f' class="{row_classes[i]}"' if row_classes else ""
        out.append(f"<tr{rc}>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
    return "".join(out) + "</table>"


def _stat_rows(rows: list[GroupRow]) -> list[list[str]]:
    return [
        [
            r.label,
            f"{r.requests:,}",
            fmt(r.rps, "rps"),
            fmt(r.p50_ms, "ms"),
            fmt(r.p95_ms, "ms"),
            fmt(r.p99_ms, "ms"),
            fmt(r.error_pct, "%"),
            r.network,
        ]
        for r in rows
    ]


def render_html(
    result: Result,
    verdict: Verdict,
    charts: dict[str, str],
    groups: list[GroupRow],
    requests: list[GroupRow],
    changes: list[Change] | None = None,
    base_id: str | None = None,
) -> str:
    run = result.run
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>harness {escape(run.profile)} {escape(run.run_id)}</title><style>{CSS}</style></head><body>",
        f"<h1>harness {escape(run.profile)}</h1>",
        f'<p class="verdict {verdict.status}">{escape(STATUS_MARK[verdict.status])} (exit {verdict.exit_code})</p>',
        f"<p>Run <code>{escape(run.run_id)}</code> · target {escape(run.target)} · {run.duration_s:.0f} s · "
        f"workers {run.workers_seen}/{run.workers_expected}{' · partial run' if run.partial else ''}</p>",
        "<h2>Gates</h2>",
        html_table(
            ["gate", "status", "observed", "threshold", "reason"],
            [[g.name, g.status, observed_text(g), threshold_text(g), g.reason] for g in verdict.gates],
            [g.status for g in verdict.gates],
            cls="gates",
        ),
    ]
    head = ["name", "requests", "rps", "p50", "p95", "p99", "errors", "network"]
    parts += ["<h2>Steady state by group</h2>", html_table(head, _stat_rows(groups))]
    parts += ["<h2>Steady state by request name</h2>", html_table(head, _stat_rows(requests))]
    exclude = totals_excluded(result.gates or GatesConfig())
    parts += [to_html(section) for section in breakdown_sections(result, exclude)]
    if run.groups:
        parts += [
            "<h2>Groups</h2>",
            html_table(
                ["group", "network profile", "country"],
                [[n, g.network, g.country or ""] for n, g in run.groups.items()],
            ),
        ]
    parts += _hops_html(result)
    if changes is not None:
        parts.append(f"<h2>Compared with {escape(base_id or 'base')}</h2>")
        rows = [
            [
                c.metric,
                fmt(c.base, c.unit),
                fmt(c.current, c.unit),
                "n/a" if c.change_pct is None else f"{c.change_pct:+.1f} %",
                "regression" if c.regressed else "",
            ]
            for c in changes
        ]
        parts.append(
            html_table(
                ["metric", "base", "current", "change", ""], rows, ["failed" if c.regressed else "" for c in changes]
            )
        )
    parts.append("<h2>Charts</h2>")
    for title, png in charts.items():
        parts.append(f'<h3>{escape(title)}</h3><img alt="{escape(title)}" src="data:image/png;base64,{png}">')
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _hops_html(result: Result) -> list[str]:
    """Delivery by hop: the attribution, the counts per hop and the latency legs (docs/delivery.md)."""
    section = hops_section(result)
    if section is None:
        return []
    parts = ["<h2>Delivery by hop</h2>", f"<p>{escape(section.attribution)}</p>"]
    if section.windows:
        parts.append("<ul>" + "".join(f"<li>{escape(w)}</li>" for w in section.windows) + "</ul>")
    if section.server_note:
        parts.append(f"<p>{escape(section.server_note)}</p>")
    parts.append(html_table(["hop", "counted by", "count"], section.hop_rows))
    if section.leg_rows:
        head = ["delivery leg", "deliveries", "p50", "p95", "mean", "share of mean"]
        parts += [html_table(head, section.leg_rows), f"<p>{escape(section.leg_note)}</p>"]
    return parts
