"""bench/run section 1: the harness client layer vs bare Locust vs wrk, on the same authorised REST read.

    wrk -t1 -cN (bench/wrk/region_read.lua) ─────────────────────────┐
    python bench/sbs_locust_rest.py --variant bare  (FastHttpUser) ──┼──► GET /rest/v1/messages?…&limit=50
    python bench/sbs_locust_rest.py --variant ours  (SupabaseSession)┘     of the Singapore region, directly

Each generator is its own process on one core (wrk with one thread), N connections / users, no think time; its
CPU seconds are read from the kernel (wrk: wait4's rusage) or the process itself (Locust). The order of the three
alternates between rounds, and every round is shown, so the spread is visible next to the ratio.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from side_by_side import BENCH, REPO, table

VARIANTS = ("wrk", "bare Locust FastHttpUser", "harness SupabaseSession")


@dataclass
class Sample:
    variant: str
    round: int
    requests: int
    failed: int
    wall_s: float
    cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0

    @property
    def per_cpu_s(self) -> float:
        return self.requests / self.cpu_s if self.cpu_s else 0.0


def run_wrk(url: str, env: dict[str, str], seconds: int, connections: int) -> tuple[int, int, float, float]:
    """(requests, non-2xx + socket errors, wall s, CPU s) of one wrk run with one thread."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(BENCH / "wrk" / "region_read.lua"), url]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(command, env={**os.environ, **env}, stdout=out, stderr=err)
        deadline = started + seconds + 30
        while True:  # wait4 gives this child's own CPU; bounded by the deadline
            pid, _status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, _status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = 0  # reaped above: keep Popen from waiting again
        wall_s = time.monotonic() - started
        out.seek(0)
        text = out.read().decode(errors="replace")
    total = re.search(r"(\d+) requests in", text)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    duration = re.search(r"requests in ([\d.]+)(m?s)", text)
    if duration:  # wrk's own measured span, without process start-up
        wall_s = float(duration.group(1)) / (1000 if duration.group(2) == "ms" else 1)
    failed = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return int(total.group(1)) if total else 0, failed, wall_s, usage.ru_utime + usage.ru_stime


def run_locust(variant: str, url: str, env: dict[str, str], seconds: float, users: int) -> dict[str, Any]:
    command = [sys.executable, str(BENCH / "sbs_locust_rest.py"), "--variant", variant, "--host", url,
               "--token", env["BENCH_TOKEN"], "--conversation", env["BENCH_CONVERSATION"],
               "--users", str(users), "--seconds", str(seconds)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 90, cwd=REPO, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{variant} Locust run failed (exit {done.returncode}): {done.stderr[-500:]}")
    return dict(json.loads(lines[-1]))


def measure(url: str, env: dict[str, str], rounds: int, seconds: int, users: int) -> list[Sample]:
    samples: list[Sample] = []
    for n in range(1, rounds + 1):
        order = VARIANTS if n % 2 else tuple(reversed(VARIANTS))
        for variant in order:
            if variant == "wrk":
                requests, failed, wall_s, cpu_s = run_wrk(url, env, seconds, users)
                samples.append(Sample(variant, n, requests, failed, wall_s, cpu_s))
            else:
                which = "bare" if variant.startswith("bare") else "ours"
                row = run_locust(which, url, env, seconds, users)
                samples.append(Sample(variant, n, row["requests"], row["failed"], row["wall_s"], row["cpu_s"]))
    return samples


def render(samples: list[Sample], users: int, seconds: int) -> str:
    rows: list[list[object]] = []
    ratios: list[float] = []
    for n in sorted({s.round for s in samples}):
        by = {s.variant: s for s in samples if s.round == n}
        for variant in VARIANTS:
            s = by.get(variant)
            if s is None:
                continue
            rows.append([n, variant, f"{s.rps:,.0f}", f"{s.cpu_s:.2f}", f"{s.per_cpu_s:,.0f}", s.failed, ""])
        bare, ours = by.get(VARIANTS[1]), by.get(VARIANTS[2])
        if bare and ours and bare.per_cpu_s and bare.rps:
            ratio = ours.per_cpu_s / bare.per_cpu_s
            ratios.append(ratio)
            rows[-1][-1] = f"**{ratio * 100:.0f} %** per CPU-s, {100 * ours.rps / bare.rps:.0f} % per s"
    columns = ["round", "generator", "req/s", "generator CPU-s", "req per CPU-s", "failed", "ours / bare Locust"]
    median = sorted(ratios)[len(ratios) // 2] if ratios else None
    lines = [
        "## 1. Client layer vs bare Locust vs wrk",
        "",
        f"Same request for all three: an authorised history read (`GET /rest/v1/messages?select=*&conversation_id="
        f"eq.…&order=created_at.desc&limit=50`, a user JWT, row-level security applied, 200 seeded messages) sent "
        f"**directly to the Singapore region** (no edge), {users} keep-alive connections / users with no think "
        f"time, {seconds} s measured per generator after a 1 s warm-up. Each generator is one process (wrk with one "
        f"thread), so requests per generator CPU-second compares what each costs per request; req/s is bounded by "
        f"the region server, which shares the machine's cores with the generator.",
        "",
        table(columns, rows),
        "",
        f"Ours / bare Locust, requests per generator CPU-second, median of {len(ratios)} round(s): "
        + (f"**{median * 100:.0f} %** (goal ≥ 95 %)." if median is not None else "not measured."),
    ]
    return "\n".join(lines)


def run(url: str, *, rounds: int, seconds: int, users: int) -> str:
    sys.path.insert(0, str(BENCH))
    import bench_region  # the seed wrk's scripts read (user, conversation, 200 messages)

    env = bench_region.seed(url)
    return render(measure(url, env, rounds, seconds, users), users, seconds)


if __name__ == "__main__":  # by hand: python bench/sbs_client_layer.py URL
    print(run(sys.argv[1], rounds=1, seconds=3, users=16))
