"""write_reports on a synthetic result: junit parses with the right failures, html is self-contained, summary lists
every gate."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from report_synth import synthetic

from harness.gates.verdict import evaluate
from harness.model.result import Result, load_result
from harness.report import write_reports

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_writes_all_files(tmp_path: Path, result: Result):
    paths = write_reports(result, tmp_path / "out")
    assert {p.name for p in paths.values()} == {"junit.xml", "summary.md", "report.html", "result.json"}
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    assert load_result(paths["result"]) == result


def test_junit_has_one_testcase_per_gate_and_the_right_failures(tmp_path: Path, result: Result):
    verdict = evaluate(result)
    assert verdict.status == "failed"
    paths = write_reports(result, tmp_path)
    root = ET.parse(paths["junit"]).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [g.name for g in verdict.gates]
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    assert failed == {"group[china].p95"}
    assert not [c for c in cases if c.find("error") is not None]
    assert suite.get("failures") == "1" and suite.get("errors") == "0"
    assert suite.get("tests") == str(len(verdict.gates))
    smoke = [c for c in cases if c.get("classname") == "harness.smoke"]
    assert [c.get("name") for c in smoke] == ["smoke.login"]
    failure = next(c for c in cases if c.get("name") == "group[china].p95").find("failure")
    assert failure is not None and "is not < 300 ms" in (failure.get("message") or "")


def test_junit_marks_invalid_checks_as_errors(tmp_path: Path, result: Result):
    broken = result.model_copy(update={"run": result.run.model_copy(update={"workers_seen": 0})})
    root = ET.parse(write_reports(broken, tmp_path)["junit"]).getroot()
    errors = [c.get("name") for c in root.iter("testcase") if c.find("error") is not None]
    assert errors == ["valid.workers"]


def test_failed_smoke_checks_fail_in_junit(tmp_path: Path):
    root = ET.parse(write_reports(synthetic(smoke_ok=False), tmp_path)["junit"]).getroot()
    failed = {c.get("name") for c in root.iter("testcase") if c.find("failure") is not None}
    assert "smoke.login" in failed


def test_html_is_self_contained_with_charts_and_gate_table(tmp_path: Path, result: Result):
    html = write_reports(result, tmp_path)["html"].read_text()
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', html)
    assert len(images) == 5
    assert all(base64.b64decode(img).startswith(PNG_MAGIC) for img in images)
    assert '<table class="gates">' in html
    for gate in evaluate(result).gates:
        assert f"<td>{gate.name}</td>" in html.replace("&lt;", "<").replace("&gt;", ">")
    assert "http://" not in html and "https://" not in html  # nothing fetched from elsewhere


def test_summary_mentions_every_gate_and_the_verdict(tmp_path: Path, result: Result):
    summary = write_reports(result, tmp_path)["summary"].read_text()
    assert summary.startswith("## harness china: ❌ failed (exit 1)")
    for gate in evaluate(result).gates:
        assert f"| {gate.name.replace('|', chr(92) + '|')} |" in summary
    assert "| china | " in summary and "cn-telecom-peak-to-tokyo" in summary


def test_summary_is_appended_to_the_step_summary_file(tmp_path: Path, result: Result):
    step = tmp_path / "step_summary.md"
    step.write_text("earlier step\n")
    write_reports(result, tmp_path / "out", step_summary=step)
    text = step.read_text()
    assert text.startswith("earlier step\n")
    assert "## harness china" in text


def test_compare_shows_regressions_against_a_base(tmp_path: Path, result: Result):
    base = synthetic(latency_scale=0.5)  # the base was twice as fast
    paths = write_reports(result, tmp_path, base=base)
    summary = paths["summary"].read_text()
    assert "### Compared with `run-synthetic`" in summary
    assert re.search(r"\| group\[china\]\.p95 \| [\d,.]+ ms \| [\d,.]+ ms \| \+\d+\.\d % \| ⚠️ regression \|", summary)
    assert "| group[all].rps |" in summary
    html = paths["html"].read_text()
    assert "Compared with run-synthetic" in html and "regression" in html


def test_an_empty_invalid_run_still_gets_every_report(tmp_path: Path):
    from harness.model.result import ResultBuilder, RunInfo

    run = RunInfo(run_id="e", profile="smoke", started_s=0, ended_s=0, target="x", workers_expected=1, workers_seen=0)
    paths = write_reports(ResultBuilder(5.0).build(run), tmp_path)
    assert paths["summary"].read_text().startswith("## harness smoke: ⚠️ invalid (exit 2)")
    root = ET.parse(paths["junit"]).getroot()
    assert {c.get("name") for c in root.iter("testcase") if c.find("error") is not None} >= {
        "valid.workers",
        "valid.requests",
        "rps",
        "p95",
    }
    assert "data:image/png;base64," in paths["html"].read_text()
