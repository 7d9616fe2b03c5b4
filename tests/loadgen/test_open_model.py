"""The open model end to end: `harness run` against a loopback target with a fixed delay.

Iterations start at the profile's rate whatever the latency (a closed model with the same users would run at
users / latency instead), and when the pool is too small for rate × latency (Little's law) the iterations that
find no free user are counted as dropped and gated.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from loadgen_helpers import FIXTURES, run_harness
from slow_target import fixed_delay

from harness.model.result import aggregate, arrival_totals, load_result, steady_windows
from harness.procs.serving import background

SLOW_GET = FIXTURES / "slow_get.py"


def _open_profile(path: Path, *, rate: float, max_users: int, duration_s: float = 12) -> Path:
    path.write_text(
        "window_s = 1\n"
        f"[load]\nduration_s = {duration_s}\nspawn_rate = 200\n"
        "[steady_state]\nwarmup_s = 2\ncooldown_s = 1\n"
        f"[arrival.SlowGetter]\nrate = {rate}\nmax_users = {max_users}\n"
        "[gates]\nmin_rps = false\np95_ms = 2000\nmax_dropped_iterations_pct = 1\nmin_rate_achieved_pct = 95\n",
        encoding="utf-8",
    )
    return path


def _run(tmp_path: Path, url: str, profile: Path, run_id: str, workers: int) -> tuple[int, str, Path]:
    done = run_harness(
        "run", str(profile), "--host", url, "--workers", str(workers), "--locustfile", str(SLOW_GET),
        "--reports-dir", str(tmp_path), "--run-id", run_id,
    )  # fmt: skip
    return done.returncode, done.stderr + done.stdout, tmp_path / run_id


@pytest.mark.slow
def test_iterations_start_at_the_set_rate_whatever_the_latency(tmp_path: Path) -> None:
    rate, delay_s, pool = 40, 0.3, 30  # Little's law: 12 users busy on average; closed, 30 users would do 100/s
    with background(fixed_delay(delay_s)) as server:
        profile = _open_profile(tmp_path / "open.toml", rate=rate, max_users=pool)
        code, output, out = _run(tmp_path, server.url, profile, "open", workers=2)
    assert code == 0, output
    result = load_result(out / "result.json")
    windows, duration_s = steady_windows(result)
    assert duration_s >= 6  # 9 s planned; a busy machine starts the workers late
    it = arrival_totals(windows)["SlowGetter"]
    assert it.dropped == 0
    assert it.target == pytest.approx(rate * duration_s, rel=0.02)  # both workers' halves add up to the rate
    assert it.started / duration_s == pytest.approx(rate, rel=0.05)
    work = aggregate(windows, duration_s, names={"work"})
    assert work.rps == pytest.approx(rate, rel=0.08)  # one request per iteration, not users / latency
    p50 = work.sketch.quantile(0.5)
    assert p50 is not None and p50 >= delay_s * 1000  # the target really was slow
    assert "iterations[SlowGetter].dropped" in (out / "junit.xml").read_text()
    assert "iterations[SlowGetter].rate" in (out / "summary.md").read_text()


@pytest.mark.slow
def test_a_pool_too_small_for_rate_times_latency_drops_iterations(tmp_path: Path) -> None:
    rate, delay_s, pool = 40, 0.25, 4  # at most 4 / 0.25 = 16 iterations/s can run: about 24/s are dropped
    with background(fixed_delay(delay_s)) as server:
        profile = _open_profile(tmp_path / "small.toml", rate=rate, max_users=pool)
        code, output, out = _run(tmp_path, server.url, profile, "small", workers=1)
    assert code == 1, output  # the dropped-iterations and rate gates fail
    result = load_result(out / "result.json")
    windows, duration_s = steady_windows(result)
    it = arrival_totals(windows)["SlowGetter"]
    started_rate = it.started / duration_s
    assert 0.75 * pool / delay_s <= started_rate <= pool / delay_s * 1.03  # Little's law bounds what can start
    assert it.due == pytest.approx(rate * duration_s, rel=0.03)  # every due slot is started or dropped
    assert it.dropped / it.due == pytest.approx(1 - started_rate / rate, abs=0.01)
    assert 0.55 <= it.dropped / it.due <= 0.7
    assert it.completed == pytest.approx(it.started, abs=pool)
    assert "iterations[SlowGetter].dropped" in output and "iterations[SlowGetter].rate" in output
