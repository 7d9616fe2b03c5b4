"""bench/run section 3: percentiles from the harness sketch vs Locust's own vs the exact value, same samples.

    samples (ms) ─┬─► sorted ──────────────────────────────► exact: the sample at rank ⌊q·(n − 1)⌋
                  ├─► harness.model.sketch.Sketch.add ──────► Sketch.quantiles   (1 % relative bound)
                  └─► locust.stats.StatsEntry.log ──────────► get_response_time_percentile (Locust rounds each
                                                              time to whole ms under 100 ms, 10 ms under 1 s,
                                                              100 ms above, before counting it)

Two sets: a recorded one (the bare Locust chain's steady-state request latencies from section 2, a real run on
this stack) and a synthetic one (a seeded log-normal body around 4 ms with a 2 % slow tail around 400 ms, the
shape of loopback REST latencies under load), so the table exists even when section 2 is skipped.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from side_by_side import BENCH, REPO, table

from harness.model.sketch import RELATIVE_ACCURACY, Sketch

QUANTILES = (0.5, 0.95, 0.99, 0.999)


def synthetic(n: int, seed: int = 13) -> list[float]:
    rnd = random.Random(seed)
    return [rnd.lognormvariate(math.log(400), 0.6) if rnd.random() < 0.02 else rnd.lognormvariate(math.log(4), 0.5)
            for _ in range(n)]  # fmt: skip


def exact(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[math.floor(q * (len(sorted_ms) - 1))]


def compare(samples_ms: list[float]) -> list[tuple[float, float, float, float]]:
    """(q, exact, sketch, Locust) per quantile."""
    from locust.stats import RequestStats, StatsEntry  # importing locust monkey-patches: only in the child

    ordered = sorted(samples_ms)
    sketch = Sketch()
    entry = StatsEntry(RequestStats(), "bench", "GET")
    for ms in samples_ms:
        sketch.add(ms)
        entry.log(ms, 0)  # Locust passes float milliseconds here too (FastHttpSession does)
    ours = sketch.quantiles(list(QUANTILES))
    rows = []
    for q, s in zip(QUANTILES, ours, strict=True):
        rows.append((q, exact(ordered, q), float(s or 0.0), float(entry.get_response_time_percentile(q))))
    return rows


def _err(value: float, truth: float) -> str:
    return "—" if truth == 0 else f"{100 * (value - truth) / truth:+.2f} %"


def render_set(title: str, samples_ms: list[float]) -> str:
    rows = []
    worst = 0.0
    for q, truth, s, loc in compare(samples_ms):
        worst = max(worst, abs(s - truth) / truth if truth else 0.0)
        rows.append([f"p{q * 100:g}", f"{truth:,.3f} ms", f"{s:,.3f} ms", _err(s, truth), f"{loc:,.0f} ms",
                     _err(loc, truth)])  # fmt: skip
    columns = ["quantile", "exact (sorted)", "harness sketch", "sketch error", "Locust", "Locust error"]
    return "\n".join([
        f"**{title}** — {len(samples_ms):,} samples, min {min(samples_ms):,.3f} ms, max {max(samples_ms):,.1f} ms; "
        f"largest sketch error {100 * worst:.2f} % (bound {RELATIVE_ACCURACY * 100:g} %).",
        "",
        table(columns, rows),
    ])  # fmt: skip


def run(recorded_ms: list[float] | None, synthetic_n: int) -> str:
    """The section, computed in a child process: importing Locust monkey-patches the importing process (gevent),
    which bench/run, holding the stack and watching CPU from a thread, must not be."""
    with tempfile.TemporaryDirectory(prefix="sbs-pct-") as tmp:
        path = Path(tmp) / "recorded.json"
        path.write_text(json.dumps(recorded_ms or []))
        command = [sys.executable, str(BENCH / "sbs_percentiles.py"), str(path), str(synthetic_n)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"percentiles failed (exit {done.returncode}): {done.stderr[-500:]}")
    return done.stdout.rstrip("\n")


def markdown(recorded_ms: list[float] | None, synthetic_n: int) -> str:
    parts = [
        "## 3. Percentiles: harness sketch vs Locust vs exact",
        "",
        "The same samples go into a sorted list (exact: the sample at rank ⌊q·(n − 1)⌋, the rank the sketch "
        "targets), the harness sketch (`harness.model.sketch.Sketch`, relative error bound "
        f"{RELATIVE_ACCURACY * 100:g} %) and a Locust `StatsEntry` (what Locust's statistics, CSV and UI report; it "
        "stores each time rounded to whole ms under 100 ms, to 10 ms under 1 s, to 100 ms above).",
        "",
    ]
    if recorded_ms:
        parts += [render_set("Recorded: section 2's bare Locust chain, steady state, every request", recorded_ms), ""]
    parts.append(
        render_set("Synthetic: seeded log-normal, median 4 ms, 2 % tail around 400 ms", synthetic(synthetic_n))
    )
    return "\n".join(parts)


if __name__ == "__main__":  # the child: python bench/sbs_percentiles.py RECORDED.json SYNTHETIC_N
    print(markdown(json.loads(Path(sys.argv[1]).read_text()) or None, int(sys.argv[2])))
