"""A drill's result as text: the wording every drill report shares, summary.md, and the recovery drill's recovery.md.

    DrillResult ──> drill_status / measure texts (shared with drill_junit, drill_html)
                ├─> render_drill_summary      summary.md: verdict, measures, events, phases
                └─> render_recovery_record    recovery.md: the monthly recovery test record (recovery drill only)

Pure functions of the result; `drill.write_drill_reports` writes the files.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from harness.gates.verdict import fmt
from harness.model.drill import DrillEvent, DrillResult, Measure

DrillStatus = Literal["passed", "failed", "invalid"]

STATUS_ICON: dict[DrillStatus, str] = {"passed": "✅", "failed": "❌", "invalid": "⚠️"}
RECOVERY_TARGET_S = 30 * 60.0
"""The recovery drill's target: the service is back within 30 minutes."""
RECOVERY_MEASURES = ("recovery_s", "rto_s")
"""The measures that hold the recovery time, first found wins."""
_SECONDS_PER_UNIT = {"s": 1.0, "ms": 0.001, "min": 60.0}


def drill_status(result: DrillResult) -> DrillStatus:
    """Invalid (the drill itself broke) before failed (a gate or a phase failed); the same order as `exit_code`."""
    return "invalid" if result.errors else "passed" if result.passed else "failed"


def verdict_text(result: DrillResult) -> str:
    status = drill_status(result)
    return f"{STATUS_ICON[status]} {status.upper()} (exit {result.exit_code})"


def title(result: DrillResult) -> str:
    return f"{result.drill.capitalize()} drill ({result.fault})"


def when(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def span_s(result: DrillResult) -> float:
    """How long the drill ran, from whatever it recorded last (a drill that failed early may have no samples)."""
    ends = [s.t_s + 1.0 for s in result.timeline[-1:]]
    ends += [e.t_s for e in result.events] + [p.ended_t_s for p in result.phases]
    return max([0.0, *ends])


def seconds_text(seconds: float) -> str:
    """`12.3 s`, or `4 min 12 s` from a minute on."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def sorted_events(result: DrillResult) -> list[DrillEvent]:
    return sorted(result.events, key=lambda e: e.t_s)


def value_text(m: Measure) -> str:
    return "not measured" if m.value is None else fmt(m.value, m.unit)


def gate_text(m: Measure) -> str:
    return "not gated" if m.gate is None else f"≤ {fmt(m.gate, m.unit)}"


def measure_status(m: Measure) -> str:
    """A CSS class: passed, failed, or empty for a reported (ungated) figure."""
    return {True: "passed", False: "failed", None: ""}[m.passed]


def measure_verdict(m: Measure) -> str:
    return {True: "✅ pass", False: "❌ FAIL", None: "reported"}[m.passed]


def measure_reason(m: Measure) -> str:
    """One line saying why a measure passed, failed or was only reported; the JUnit message."""
    if m.value is None:
        text = f"{m.name} not measured" + (f" (gate {gate_text(m)})" if m.gate is not None else "")
    elif m.gate is None:
        text = f"{m.name} = {value_text(m)} (not gated)"
    else:
        word = "within" if m.passed else "exceeds"
        text = f"{m.name} = {value_text(m)} {word} gate {gate_text(m)}"
    return f"{text}: {m.detail}" if m.detail else text


def failed_names(result: DrillResult) -> list[str]:
    """The failed measures and phases, by name, in report order."""
    names = [m.name for m in result.measures if m.passed is False]
    return names + [f"phase {p.name}" for p in result.phases if not p.ok]


def _md(text: str) -> str:
    """Safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    return lines + ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]


def render_drill_summary(result: DrillResult) -> str:
    lines = [
        f"## {title(result)}: {verdict_text(result)}",
        "",
        f"Run `{result.run_id}` · target {_md(result.target)} · {when(result.started_unix_s)} · "
        f"{span_s(result):.0f} s · synchronous commit: {'yes' if result.synchronous_commit else 'no'}",
    ]
    if result.errors:
        lines += ["", "**The drill is invalid:**", ""] + [f"- {_md(e)}" for e in result.errors]
    if failed := failed_names(result):
        lines += ["", "Failed: " + ", ".join(f"`{n}`" for n in failed)]
    lines += ["", "### Measures", ""]
    if result.measures:
        rows = [[m.name, value_text(m), gate_text(m), measure_verdict(m), m.detail] for m in result.measures]
        lines += _table(["measure", "value", "gate", "verdict", "detail"], rows)
    else:
        lines.append("No measures.")
    lines += ["", "### Events", ""]
    if result.events:
        lines += _table(["t", "kind", "event"], [[f"{e.t_s:.1f} s", e.kind, e.label] for e in sorted_events(result)])
    else:
        lines.append("No events.")
    if result.phases:
        rows = [
            [p.name, seconds_text(p.seconds), "OK" if p.ok else "❌ FAILED", "; ".join(p.errors)] for p in result.phases
        ]
        lines += ["", "### Phases", "", *_table(["phase", "duration", "result", "errors"], rows)]
    return "\n".join(lines) + "\n"


def seconds_of(m: Measure) -> float | None:
    """A time measure's value in seconds; None when not measured or not in a unit of time."""
    factor = _SECONDS_PER_UNIT.get(m.unit)
    return None if m.value is None or factor is None else m.value * factor


def recovery_seconds(result: DrillResult) -> tuple[Measure, float | None] | None:
    """The recovery-time measure and its value in seconds (None when not measured or in an unknown unit)."""
    m = next((found for name in RECOVERY_MEASURES if (found := result.measure(name)) is not None), None)
    return None if m is None else (m, seconds_of(m))


def _recovery_line(result: DrillResult) -> str:
    target = f"the {RECOVERY_TARGET_S / 60:.0f}-minute target"
    found = recovery_seconds(result)
    if found is None:
        return (
            f"Not measured (no {' or '.join(f'`{n}`' for n in RECOVERY_MEASURES)} measure): {target} is not shown met."
        )
    m, seconds = found
    if m.value is None:
        return f"Not measured (`{m.name}`): {target} is not shown met."
    if seconds is None:
        return f"{value_text(m)} (`{m.name}`, unit not comparable with {target})."
    met = "**met**" if seconds <= RECOVERY_TARGET_S else "**missed**"
    return f"{seconds_text(seconds)} (`{m.name}`) against {target}: {met}."


def render_recovery_record(result: DrillResult) -> str:
    """The monthly recovery test record: when, what, each phase, the issues found and the recovery time."""
    started = datetime.fromtimestamp(result.started_unix_s, UTC)
    lines = [
        f"# Recovery test record: {started:%Y-%m-%d}",
        "",
        *_table(
            ["", ""],
            [
                ["date", when(result.started_unix_s)],
                ["target", result.target],
                ["run", result.run_id],
                ["fault", result.fault],
                ["synchronous commit", "yes" if result.synchronous_commit else "no"],
                ["result", verdict_text(result)],
            ],
        ),
        "",
        "## Phases",
        "",
    ]
    if result.phases:
        rows = [
            [p.name, f"{p.started_t_s:.1f} s", seconds_text(p.seconds), "OK" if p.ok else "FAILED"]
            for p in result.phases
        ]
        lines += _table(["phase", "started at", "duration", "result"], rows)
    else:
        lines.append("No phase ran.")
    lines += ["", "## Issues found", ""]
    issues = [f"- drill: {_md(e)}" for e in result.errors]
    for p in result.phases:
        if not p.ok:
            issues += [f"- {p.name}: {_md(e)}" for e in p.errors] or [f"- {p.name}: failed (no error recorded)"]
    lines += issues or ["none"]
    lines += ["", "## Recovery time", "", _recovery_line(result)]
    return "\n".join(lines) + "\n"
