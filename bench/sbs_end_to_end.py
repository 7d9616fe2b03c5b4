"""bench/run section 2: `harness load` vs a bare Locust → edge → region chain, same users, same reference stack.

    harness load --host <edge> --users N --workers 1 --locustfile locustfiles/messaging.py   (master + 1 worker)
    locust -f bench/bare_messaging.py --headless -u N -r N -t D --host <edge>                 (one process)
        both: MessagingUser's calls (sign in, websocket + joins, 4 inserts : 2 history reads : 1 typing, 1–3 s think)
              ──► edge ──► Singapore region (PostgreSQL) ──► change feed back over the same websocket

Figures over the same steady state for both: from ramp-up + 15 s to the end − 5 s (load.toml's; the harness cuts
it to whole 5-s windows, the bare chain's raw samples need no cut); rps, p95 and errors over every request
(deliveries are not requests), p95 from the harness sketch in both cases so the estimator is the same; generator
CPU is the process tree's CPU seconds over that span
(`side_by_side.CpuTrace`), start-up and provisioning left out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from side_by_side import BENCH, REPO, CpuTrace, table

from harness.gates.verdict import totals_excluded
from harness.model.profile import GatesConfig
from harness.model.result import Span, load_result, steady_windows
from harness.model.sketch import Sketch
from harness.scenarios.provisioning import provision_users, remove_users

WARMUP_S = 15.0
COOLDOWN_S = 5.0
GROUP_SIZE = 4


@dataclass
class Figures:
    chain: str
    users: int
    requests: int
    span_s: float
    rps: float
    p95_ms: float | None
    error_pct: float
    cpu_s: float | None

    @property
    def cpu_pct(self) -> float | None:
        return 100 * self.cpu_s / self.span_s if self.cpu_s is not None and self.span_s else None

    @property
    def per_cpu_s(self) -> float | None:
        return self.requests / self.cpu_s if self.cpu_s else None


def child_env() -> dict[str, str]:
    """This checkout first on the path, so children run the code being measured (not another install)."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), path) if p)}


def _run_traced(command: list[str], env: dict[str, str], timeout_s: float) -> tuple[CpuTrace, str]:
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        with CpuTrace(proc.pid) as trace:
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.seek(0)
        return trace, log.read().decode(errors="replace")[-2000:]


def harness_load(edge_url: str, users: int, duration_s: int, work: Path) -> Figures:
    command = [sys.executable, "-m", "harness", "load", "--host", edge_url, "--users", str(users),
               "--spawn-rate", str(users),
               "--duration", f"{duration_s}s", "--workers", "1", "--locustfile", "locustfiles/messaging.py",
               "--reports-dir", str(work), "--run-id", "harness-load", "--no-checks"]  # fmt: skip
    trace, tail = _run_traced(command, child_env(), duration_s + 180)
    path = work / "harness-load" / "result.json"
    if not path.exists():
        raise RuntimeError(f"harness load wrote no result.json; its output ended with:\n{tail}")
    result = load_result(path)
    windows, span_s = steady_windows(result)
    agg = Span.of(windows, span_s).select(exclude_names=totals_excluded(result.gates or GatesConfig()))
    cpu = None
    if windows:
        first = min(w.start_s for w in windows)
        cpu = trace.between(first, first + span_s)
    return Figures("`harness load` (MessagingUser)", users, agg.count, span_s, agg.rps or 0.0,
                   agg.sketch.quantile(0.95), agg.error_pct or 0.0, cpu)  # fmt: skip


def bare_locust(edge_url: str, users: int, duration_s: int, work: Path) -> tuple[Figures, list[float]]:
    """The bare chain's figures and its steady-state latencies (ms), for the percentile table."""
    credentials, cred_path = provision_users(edge_url, users + GROUP_SIZE, GROUP_SIZE)
    samples_path = work / "bare-samples.json"
    try:
        env = {**child_env(), "BARE_CREDENTIALS": str(cred_path), "BARE_SAMPLES": str(samples_path)}
        command = [sys.executable, "-m", "locust", "-f", str(BENCH / "bare_messaging.py"), "--headless",
                   "-u", str(users), "-r", str(users), "-t", f"{duration_s}s", "--host", edge_url,
                   "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "5"]  # fmt: skip
        trace, tail = _run_traced(command, env, duration_s + 90)
    finally:
        remove_users(edge_url, cred_path, len(credentials.users))
    if not samples_path.exists():
        raise RuntimeError(f"the bare Locust run wrote no samples; its output ended with:\n{tail}")
    data = json.loads(samples_path.read_text())
    started = float(data["started"])
    # The same plateau as the harness's (all users start in the first second); raw samples need no windows.
    first, last = started + 1.0 + WARMUP_S, started + duration_s - COOLDOWN_S
    span_s = max(0.0, last - first)
    inside = [(ms, ok) for t, ms, ok in data["samples"] if first <= t < last]
    sketch = Sketch()
    for ms, _ok in inside:
        sketch.add(ms)
    failed = sum(1 for _ms, ok in inside if not ok)
    n = len(inside)
    figures = Figures("bare Locust → edge → region", users, n, span_s, n / span_s if span_s else 0.0,
                      sketch.quantile(0.95), 100 * failed / n if n else 0.0, trace.between(first, last))  # fmt: skip
    return figures, [ms for ms, _ok in inside]


def render(rows: list[Figures], duration_s: int) -> str:
    def fmt(x: float | None, spec: str) -> str:
        return "—" if x is None else format(x, spec)

    body = [[f.chain, f.users, f"{f.rps:,.0f}", fmt(f.p95_ms, ",.0f") + " ms", f"{f.error_pct:.2f} %",
             f.requests, f"{f.span_s:.0f} s", fmt(f.cpu_s, ".2f"), fmt(f.cpu_pct, ".0f") + " %",
             fmt(f.per_cpu_s, ",.0f")] for f in rows]  # fmt: skip
    columns = ["chain", "users", "rps (steady)", "p95", "errors", "requests", "steady span", "generator CPU-s",
               "generator CPU", "req per CPU-s"]  # fmt: skip
    return "\n".join([
        "## 2. End to end: `harness load` vs a bare Locust chain",
        "",
        f"Both against the same reference stack, through the edge, {rows[0].users if rows else 0} users spawned at "
        f"once, {duration_s} s each, one generator process (`harness load --workers 1` also has its master). The "
        f"bare chain (`bench/bare_messaging.py`) makes MessagingUser's calls with Locust's FastHttpUser and "
        f"websocket-client and nothing else (no delivery recording, run state, result builder). Steady state: "
        f"ramp-up + 15 s to the end − 5 s (the harness's cut to its whole 5-s windows); p95 from the harness "
        f"sketch for both.",
        "",
        table(columns, body),
    ])  # fmt: skip


def run(edge_url: str, *, users: int, duration_s: int) -> tuple[str, list[float]]:
    """(Markdown, the bare chain's steady-state latencies in ms: a recorded set for the percentile table)."""
    with tempfile.TemporaryDirectory(prefix="sbs-e2e-") as tmp:
        work = Path(tmp)
        ours = harness_load(edge_url, users, duration_s, work)
        bare, samples = bare_locust(edge_url, users, duration_s, work)
    return render([ours, bare], duration_s), samples
