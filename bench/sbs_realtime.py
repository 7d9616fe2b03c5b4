"""bench/run section 4: joined Realtime sockets held by one gevent worker process, and the memory each costs.

    python bench/sbs_realtime_worker.py (gevent, harness RealtimeClient × N) ──► the Singapore region, directly
    this process watches the region server: its RSS before and after, so the server's cost per socket shows too

Goal (issue 13): ≥ 10,000 joined sockets in one worker at ≤ 16 KB RSS each. Loopback only; the worker raises its
own RLIMIT_NOFILE soft limit to the hard one, and the region server inherits this process's limits.
"""

from __future__ import annotations

import json
import subprocess
import sys

import psutil
from side_by_side import BENCH, REPO, table

GOAL_SOCKETS = 10_000
GOAL_KB = 16.0


def measure(url: str, server_pid: int | None, sockets: int, max_connect_s: float) -> dict[str, float]:
    server = psutil.Process(server_pid) if server_pid else None
    server_before = server.memory_info().rss if server else 0
    command = [sys.executable, str(BENCH / "sbs_realtime_worker.py"), "--url", url, "--sockets", str(sockets),
               "--max-connect-s", str(max_connect_s)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=max_connect_s + 120, cwd=REPO, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"realtime worker failed (exit {done.returncode}): {done.stderr[-500:]}")
    row = dict(json.loads(lines[-1]))
    if server:
        # The worker has closed its sockets by now; the server's RSS rarely shrinks back, so this is its high mark.
        row["server_kb_per_socket"] = (server.memory_info().rss - server_before) / 1024 / max(1, row["held"])
    return row


def render(rows: list[dict[str, float]]) -> str:
    body = []
    for r in rows:
        met = "met" if r["joined"] >= GOAL_SOCKETS and r["kb_per_socket"] <= GOAL_KB else "not met"
        if r["asked"] < GOAL_SOCKETS:
            met = "— (fewer sockets asked than the goal: fixed costs weigh more)"
        body.append([f"{int(r['asked']):,}", f"{int(r['held']):,}", f"{int(r['joined']):,}", int(r["failed_events"]),
                     f"{r['connect_s']:.1f} s", f"{r['rss_before_mb']:.1f} → {r['rss_after_mb']:.1f} MB",
                     f"**{r['kb_per_socket']:.1f} KB**",
                     f"{r['server_kb_per_socket']:.1f} KB" if "server_kb_per_socket" in r else "—",
                     f"{int(r['nofile'][0]):,}", met])  # fmt: skip
    columns = ["sockets asked", "held", "joined", "failed events", "time to open", "worker RSS", "worker RSS each",
               "region server RSS each", "worker fd limit", f"goal ≥ {GOAL_SOCKETS:,} at ≤ {GOAL_KB:g} KB"]  # fmt: skip
    return "\n".join([
        "## 4. Realtime connections per worker",
        "",
        "One gevent process (`bench/sbs_realtime_worker.py`, as a Locust worker) opens the sockets with the "
        "harness's `RealtimeClient` (200 handshakes in flight), each joins one broadcast channel, waits 3 s for "
        "the first heartbeats, then reads its RSS growth over one warm socket, divided by the sockets held. The "
        "target is one Singapore region server (one asyncio process), reached directly on one loopback address.",
        "",
        table(columns, body),
    ])  # fmt: skip


def run(url: str, server_pid: int | None, *, sockets: int, max_connect_s: float) -> str:
    return render([measure(url, server_pid, sockets, max_connect_s)])
