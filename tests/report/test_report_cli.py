"""`harness gate` and `harness report` through the real CLI entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_synth import synthetic

from harness.cli import main
from harness.model.result import dump_result

LENIENT_PROFILE = """
[load]
users = 10
spawn_rate = 5
duration_s = 60
[scenarios]
MessagingUser = 1
[groups.china]
network = "cn-telecom-peak-to-tokyo"
[groups.baseline]
network = "baseline-lan"
[gates]
min_rps = 10
[gates.groups.china]
p95_ms = 2000
"""


def test_gate_exits_1_on_a_failed_gate_and_prints_each_gate(result_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["gate", str(result_path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL    group[china].p95" in out
    assert "PASS    route_share[china:ap-northeast-1]" in out
    assert "±" in out  # percentiles print their error bound
    assert out.rstrip().endswith("verdict: failed (exit 1)")


def test_gate_takes_gates_from_a_profile(result_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    profile = tmp_path / "lenient.toml"
    profile.write_text(LENIENT_PROFILE)
    assert main(["gate", str(result_path), "--profile", str(profile)]) == 0
    assert "verdict: passed (exit 0)" in capsys.readouterr().out


def test_gate_exits_2_on_an_invalid_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    r = synthetic()
    r = r.model_copy(update={"run": r.run.model_copy(update={"workers_expected": 4})})
    path = dump_result(r, tmp_path / "result.json")
    assert main(["gate", str(path)]) == 2
    assert "INVALID valid.workers" in capsys.readouterr().out


def test_gate_exits_2_with_a_message_on_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["gate", str(tmp_path / "nope.json")]) == 2
    assert "harness: error: " in capsys.readouterr().err


def test_report_writes_beside_the_result_by_default(result_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert main(["report", str(result_path)]) == 0
    folder = result_path.parent
    assert {p.name for p in folder.iterdir()} == {"result.json", "junit.xml", "summary.md", "report.html"}


def test_report_compare_out_and_step_summary(
    result_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    base = dump_result(synthetic(latency_scale=0.5), tmp_path / "base" / "result.json")
    step = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    out_dir = tmp_path / "out"
    assert main(["report", str(result_path), "--compare", str(base), "--out", str(out_dir)]) == 0
    assert (out_dir / "result.json").is_file()  # a copy, so the folder stands alone
    summary = (out_dir / "summary.md").read_text()
    assert "regression(s)." in summary
    assert step.read_text() == summary + "\n"
    assert str(out_dir / "report.html") in capsys.readouterr().out
