"""A report section as data (title, paragraphs, tables), rendered once to Markdown and once to HTML, so summary.md
and report.html say the same thing (used by report/tail.py and report/china.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape


@dataclass(frozen=True)
class Table:
    head: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Shown after the tables."""


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(section: Section) -> list[str]:
    lines = ["", f"### {section.title}", ""]
    for p in section.paragraphs:
        lines += [p, ""]
    for t in section.tables:
        lines.append("| " + " | ".join(_md(h) for h in t.head) + " |")
        lines.append("|---" * len(t.head) + "|")
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in t.rows]
        lines.append("")
    lines += [f"- {n}" for n in section.notes]
    while lines and lines[-1] == "":
        lines.pop()
    return lines


def to_html(section: Section) -> str:
    out = [f"<h2>{escape(section.title)}</h2>"]
    out += [f"<p>{escape(p)}</p>" for p in section.paragraphs]
    for t in section.tables:
        out.append("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in t.head) + "</tr>")
        out += ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in t.rows]
        out.append("</table>")
    if section.notes:
        out.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in section.notes) + "</ul>")
    return "\n".join(out)
