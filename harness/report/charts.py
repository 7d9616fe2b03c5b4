"""Charts as base64 PNG strings (matplotlib, Agg canvas, no pyplot global state), for the self-contained HTML."""

from __future__ import annotations

import base64
import io

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.report.series import Series

FIGSIZE_IN = (9.0, 3.2)
"""Chart size in inches; at DPI this is the pixel size in the report."""
DPI = 90


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG, drawn on its own Agg canvas (no pyplot global state)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _png(fig: Figure) -> str:
    return base64.b64encode(png_bytes(fig)).decode("ascii")


def _new(title: str) -> tuple[Figure, Axes]:
    fig = Figure(figsize=FIGSIZE_IN)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _shade_steady(ax: Axes, s: Series) -> None:
    if s.steady_t_s is not None:
        ax.axvspan(*s.steady_t_s, color="tab:green", alpha=0.08, label="steady state")


def rps_users(s: Series) -> str:
    fig, ax = _new("Throughput and users")
    ax.plot(s.t_s, s.rps, color="tab:blue", label="requests/s")
    ax.set_xlabel("s since start")
    ax.set_ylabel("requests/s")
    ax.set_ylim(bottom=0)
    _shade_steady(ax, s)
    if s.users:
        ax2 = ax.twinx()
        ax2.step(s.users_t_s, s.users, where="post", color="tab:orange", label="users")
        ax2.set_ylabel("users")
        ax2.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def percentiles(s: Series) -> str:
    fig, ax = _new("Latency percentiles per group (ms)")
    for i, (group, rows) in enumerate(sorted(s.percentiles.items())):
        color = f"C{i}"
        t = [r[0] for r in rows]
        for j, (label, style) in enumerate((("p50", ":"), ("p95", "-"), ("p99", "--"))):
            ys: list[float] = [v if (v := r[j + 1]) is not None else float("nan") for r in rows]
            ax.plot(t, ys, linestyle=style, color=color, label=f"{group} {label}")
    _shade_steady(ax, s)
    ax.set_xlabel("s since start")
    if s.percentiles:
        ax.legend(fontsize=7, ncol=3)
    return _png(fig)


def errors(s: Series) -> str:
    fig, ax = _new("Failures per second")
    ax.plot(s.t_s, s.failures_per_s, color="tab:red")
    _shade_steady(ax, s)
    ax.set_xlabel("s since start")
    return _png(fig)


def delivery(s: Series) -> str:
    fig, ax = _new("Message delivery latency distribution")
    buckets = [(lo, hi, n) for lo, hi, n in s.delivery.histogram() if hi > 0]
    if buckets:
        ax.bar(
            [lo for lo, _, _ in buckets],
            [n for _, _, n in buckets],
            width=[hi - lo for lo, hi, _ in buckets],
            align="edge",
        )
        ax.set_xscale("log")
        ax.set_xlabel("ms (log scale)")
        ax.set_ylabel("messages")
    else:
        ax.text(0.5, 0.5, "no delivery samples", ha="center", va="center", transform=ax.transAxes)
    return _png(fig)


def region_share(s: Series) -> str:
    fig, ax = _new("Origin region share per group")
    regions = sorted({r for tallies in s.origins.values() for r in tallies})
    groups = sorted(s.origins)
    left = [0.0] * len(groups)
    for i, region in enumerate(regions):
        shares = [100.0 * s.origins[g].get(region, 0) / max(1, sum(s.origins[g].values())) for g in groups]
        ax.barh(groups, shares, left=left, color=f"C{i}", label=region)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of responses")
    if regions:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no origin-region tallies", ha="center", va="center", transform=ax.transAxes)
    return _png(fig)


def all_charts(s: Series) -> dict[str, str]:
    """Title → base64 PNG, in report order."""
    return {
        "Throughput and users": rps_users(s),
        "Latency percentiles": percentiles(s),
        "Failures": errors(s),
        "Message delivery latency": delivery(s),
        "Origin region share": region_share(s),
    }
