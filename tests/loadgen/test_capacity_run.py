"""`harness capacity` end to end: a loopback target that slows down past a known rate (25 requests/s); the search
steps the open model's rate 10, 20, 30 … and stops at the first step that breaks the p95 gate, early."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loadgen_helpers import FIXTURES, run_harness
from slow_target import knee

from harness.model.result import load_result
from harness.procs.serving import background

KNEE_RPS = 25
HOLD_S = 7


@pytest.mark.slow
def test_capacity_stops_at_the_first_gate_breach_past_the_knee(tmp_path: Path) -> None:
    profile = tmp_path / "knee.toml"
    profile.write_text(
        "window_s = 1\n[load]\nduration_s = 10\nspawn_rate = 200\n"
        "[arrival.SlowGetter]\nrate = 10\nmax_users = 30\n"
        "[gates]\nmin_rps = 100000\np95_ms = 150\nmax_error_pct = 5\n",  # min_rps does not apply to steps
        encoding="utf-8",
    )
    with background(knee(KNEE_RPS, fast_s=0.005, slow_s=0.3)) as server:
        done = run_harness(
            "capacity", str(profile), "--host", server.url, "--workers", "1",
            "--locustfile", str(FIXTURES / "slow_get.py"), "--start", "10", "--step", "10", "--max", "60",
            "--hold", f"{HOLD_S}s", "--settle", "2s", "--reports-dir", str(tmp_path), "--run-id", "cap",
        )  # fmt: skip
    output = done.stderr + done.stdout
    assert done.returncode == 0, output
    out = tmp_path / "cap"
    report = json.loads((out / "capacity.json").read_text())
    assert [s["status"] for s in report["steps"]] == ["passed", "passed", "failed"], output
    assert report["sustainable"]["level"] == 20 and report["breaking"]["level"] == 30
    assert report["sustainable"]["p95_ms"] < 150 and report["sustainable"]["error_pct"] == 0
    assert any(r.startswith("p95: ") for r in report["breaking"]["reasons"])
    assert report["breaking"]["iterations_per_s"] == pytest.approx(30, rel=0.1)
    # stopped at the breach: the run never reached step 5 (of 6), and said why
    result = load_result(out / "result.json")
    assert max(w.start_s for w in result.windows) < result.run.started_s + 4 * HOLD_S
    assert "stopping the run: capacity step 3 at 30 it/s failed" in done.stderr
    assert "sustainable rate: 20 it/s" in done.stdout
    assert "knee" in (out / "capacity.md").read_text() and "<svg" in (out / "capacity.svg").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--start", "10"), "capacity: --step, --max missing (e.g. --start 100 --step 100 --max 1000)"),
        (("--start", "10", "--step", "1", "--max", "20", "--users-max", "3"), "give either --start, --step and --max"),
        (("--users-start", "1", "--users-step", "1", "--users-max", "3", "--max-users", "5"), "--max-users sizes"),
        (("--start", "10", "--step", "10", "--max", "50"), "has no [arrival] class; step users with --users-start"),
        (("--start", "10", "--step", "10", "--max", "5"), "--max: 5 is below --start 10"),
    ],
)
def test_capacity_flags_are_checked_before_anything_starts(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    done = run_harness("capacity", "smoke", "--host", "http://127.0.0.1:9", *args, "--reports-dir", str(tmp_path))
    assert done.returncode == 2
    assert message in done.stderr
    assert not list(tmp_path.iterdir())  # no run folder: nothing started
