"""A drill's timeline chart: what the load saw, second by second, with the fault and every DR step marked.

    writes/s      ──┐
    error %         │ one x axis: seconds from the drill's start
    p95 ms          │ a vertical line per event (fault red, decisions and actions purple, recovered green),
    lag ms        ──┘ labelled above the top panel; the RTO shaded from the fault on when `rto_s` was measured

Drawn like charts.py (its own Agg canvas, no pyplot state); `timeline_png` returns the PNG bytes.
"""

from __future__ import annotations

import math
from typing import Literal

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from harness.model.drill import DrillResult, DrillSample, EventKind
from harness.report.charts import png_bytes
from harness.report.drill_text import seconds_of, sorted_events, title

FIGSIZE_IN = (9.0, 9.5)
LABEL_CHARS = 28
"""Event labels are cut to this length on the chart (the tables in the reports have them whole)."""

_LineStyle = Literal["-", "--", "-.", ":"]
# kind -> (colour, line style, legend text)
_EVENT_STYLE: dict[EventKind, tuple[str, _LineStyle, str]] = {
    "fault": ("tab:red", "-", "fault"),
    "decision": ("tab:purple", ":", "DR decision"),
    "action": ("tab:purple", "--", "DR action"),
    "recovered": ("tab:green", "-", "recovered"),
    "phase": ("tab:gray", "-.", "phase"),
    "note": ("tab:gray", ":", "note"),
}

_PANELS: list[tuple[str, str]] = [
    ("writes/s", "tab:blue"),
    ("error %", "tab:red"),
    ("p95 ms", "tab:orange"),
    ("lag ms", "tab:brown"),
]


def _values(timeline: list[DrillSample]) -> list[list[float]]:
    """One list per panel; a second without a figure is a gap (NaN), not a zero."""
    nan = math.nan
    return [
        [float(s.sent) for s in timeline],
        [s.error_pct for s in timeline],
        [nan if s.p95_ms is None else s.p95_ms for s in timeline],
        [nan if s.lag_ms is None else s.lag_ms for s in timeline],
    ]


def _rto_span(result: DrillResult) -> tuple[float, float] | None:
    fault = next((e for e in result.events if e.kind == "fault"), None)
    rto = result.measure("rto_s")
    seconds = seconds_of(rto) if rto is not None else None
    return None if fault is None or seconds is None else (fault.t_s, fault.t_s + seconds)


def _label(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def timeline_figure(result: DrillResult) -> Figure:
    """Four panels sharing the x axis, top to bottom as in `_PANELS`."""
    fig = Figure(figsize=FIGSIZE_IN)
    axes: list[Axes] = list(fig.subplots(len(_PANELS), 1, sharex=True))
    fig.subplots_adjust(top=0.78, hspace=0.15)  # room above the top panel for the event labels, then the title
    fig.suptitle(f"{title(result)}: timeline", y=0.995, va="top", fontsize=10, parse_math=False)
    t = [float(s.t_s) for s in result.timeline]
    events = sorted_events(result)
    rto = _rto_span(result)
    for ax, (ylabel, colour), ys in zip(axes, _PANELS, _values(result.timeline), strict=True):
        ax.plot(t, ys, color=colour, drawstyle="steps-post")
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        if rto is not None:
            ax.axvspan(*rto, color="tab:red", alpha=0.08)
        for e in events:
            ecolour, style, _ = _EVENT_STYLE[e.kind]
            ax.axvline(e.t_s, color=ecolour, linestyle=style, linewidth=1)
    top, bottom = axes[0], axes[-1]
    for e in events:
        top.text(
            e.t_s,
            1.02,
            _label(e.label),
            transform=top.get_xaxis_transform(),
            rotation=90,
            fontsize=7,
            va="bottom",
            ha="center",
            color=_EVENT_STYLE[e.kind][0],
            parse_math=False,  # a `$` in a label is text, not TeX
        )
    if not t:
        note = "no samples: the drill stopped before the load ran"
        top.text(0.5, 0.5, note, ha="center", va="center", transform=top.transAxes)
    # Event lines do not widen the axis by themselves: a drill without samples still shows its events.
    marks = [e.t_s for e in events] + list(rto or ())
    left = min([0.0, *t, *marks])
    bottom.set_xlim(left, max([left + 1.0, *(x + 1.0 for x in t[-1:]), *(x + 1.0 for x in marks)]))
    bottom.set_xlabel("s since the drill's start")
    kinds = list(dict.fromkeys(e.kind for e in events))
    handles: list[Line2D | Patch] = [
        Line2D([], [], color=_EVENT_STYLE[k][0], linestyle=_EVENT_STYLE[k][1], label=_EVENT_STYLE[k][2]) for k in kinds
    ]
    if rto is not None:
        handles.append(Patch(color="tab:red", alpha=0.08, label=f"RTO {rto[1] - rto[0]:.1f} s"))
    if handles:
        bottom.legend(handles=handles, loc="upper right", fontsize=7)
    return fig


def timeline_png(result: DrillResult) -> bytes:
    return png_bytes(timeline_figure(result))
