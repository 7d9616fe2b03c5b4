"""write_drill_reports on hand-built drill results: every file is written, junit parses with one testcase per
measure and phase plus drill_valid and the right failures, the markdown names what failed, the HTML escapes error
texts, the chart marks every event, and the recovery drill gets its recovery test record."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from matplotlib.lines import Line2D

from harness.model.drill import DrillEvent, DrillPhase, DrillResult, DrillSample, Measure
from harness.report.drill import write_drill_reports
from harness.report.drill_chart import timeline_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
SCRIPT = "<script>alert(1)</script>"


def _timeline(seconds: int = 40, fault_at: int = 10, back_at: int = 22) -> list[DrillSample]:
    return [
        DrillSample(
            t_s=t,
            sent=50,
            failed=50 if fault_at <= t < back_at else 0,
            p95_ms=None if fault_at <= t < back_at else 20.0 + t,
            lag_ms=None if t >= fault_at else 3.0,
        )
        for t in range(seconds)
    ]


def _events() -> list[DrillEvent]:
    return [
        DrillEvent(10.0, "fault", "kill the primary"),
        DrillEvent(13.5, "decision", "primary down for 3 s: fail over"),
        DrillEvent(15.0, "action", "promote the standby"),
        DrillEvent(17.0, "action", "switch the writer record"),
        DrillEvent(22.0, "recovered", "first write accepted"),
    ]


def drill(
    measures: list[Measure] | None = None,
    *,
    timeline: list[DrillSample] | None = None,
    phases: list[DrillPhase] | None = None,
    errors: list[str] | None = None,
    kind: str = "failover",
) -> DrillResult:
    return DrillResult(
        drill="recovery" if kind == "recovery" else "failover",
        fault="kill",
        run_id="drill-test",
        started_unix_s=T0,
        target="local reference stack",
        synchronous_commit=True,
        timeline=_timeline() if timeline is None else timeline,
        events=_events(),
        measures=[
            Measure("detect_s", 3.5, "s", 10.0),
            Measure("rto_s", 12.0, "s", 30.0),
            Measure("rpo_messages", 0, "messages", 0),
            Measure("duplicates", 2, "messages", detail="reported only"),
        ]
        if measures is None
        else measures,
        phases=phases or [],
        errors=errors or [],
    )


def _suite(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    return suite


def _failures(suite: ET.Element) -> dict[str, ET.Element]:
    return {c.get("name") or "": f for c in suite.findall("testcase") if (f := c.find("failure")) is not None}


def test_a_passing_drill_writes_every_file(tmp_path: Path):
    result = drill()
    paths = write_drill_reports(result, tmp_path / "out")
    names = {"drill.json", "timeline.png", "junit.xml", "summary.md", "report.html"}
    assert {k: p.name for k, p in paths.items()} == {
        "json": "drill.json",
        "timeline": "timeline.png",
        "junit": "junit.xml",
        "summary": "summary.md",
        "html": "report.html",
    }
    assert {p.name for p in (tmp_path / "out").iterdir()} == names  # no recovery.md for the failover drill
    assert json.loads(paths["json"].read_text()) == json.loads(json.dumps(result.as_dict()))
    assert paths["timeline"].read_bytes().startswith(PNG_MAGIC)

    suite = _suite(paths["junit"])
    assert suite.get("name") == "harness.drill.failover"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["detect_s", "rto_s", "rpo_messages", "duplicates", "drill_valid"]
    assert {c.get("classname") for c in cases} == {"drill.failover.kill"}
    assert not _failures(suite) and not suite.findall(".//error")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "0", "0")
    duplicates = next(c for c in cases if c.get("name") == "duplicates").find("system-out")
    assert duplicates is not None and "2 messages" in (duplicates.text or "")

    summary = paths["summary"].read_text()
    assert summary.startswith("## Failover drill (kill): ✅ PASSED (exit 0)")
    assert "synchronous commit: yes" in summary and "2023-11-14 22:13:20 UTC" in summary
    assert "| rto_s | 12 s | ≤ 30 s | ✅ pass |" in summary
    assert "| duplicates | 2 messages | not gated | reported |" in summary
    assert "| 13.5 s | decision | primary down for 3 s: fail over |" in summary
    assert "Failed:" not in summary


def test_a_measure_over_its_gate_fails_in_every_report(tmp_path: Path):
    measures = [Measure("rto_s", 45.0, "s", 30.0, detail="switch took long"), Measure("detect_s", 3.0, "s", 10.0)]
    result = drill(measures)
    assert result.exit_code == 1
    paths = write_drill_reports(result, tmp_path)

    suite = _suite(paths["junit"])
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    failures = _failures(suite)
    assert set(failures) == {"rto_s"}
    message = failures["rto_s"].get("message") or ""
    assert all(part in message for part in ("45 s", "≤ 30 s", "switch took long", "exceeds"))

    summary = paths["summary"].read_text()
    assert "FAILED (exit 1)" in summary
    assert "Failed: `rto_s`" in summary
    assert "| rto_s | 45 s | ≤ 30 s | ❌ FAIL | switch took long |" in summary

    html = paths["html"].read_text()
    assert '<tr class="failed"><td>rto_s</td><td>45 s</td>' in html
    assert '<p class="verdict failed">❌ FAILED (exit 1)</p>' in html


def test_a_gated_measure_not_measured_fails_and_an_ungated_one_only_reports(tmp_path: Path):
    measures = [Measure("realtime_reconnect_s", None, "s", 60.0), Measure("meeting_rejoin_s", None, "s")]
    paths = write_drill_reports(drill(measures), tmp_path)
    suite = _suite(paths["junit"])
    failures = _failures(suite)
    assert set(failures) == {"realtime_reconnect_s"}
    assert "not measured" in (failures["realtime_reconnect_s"].get("message") or "")
    assert failures["realtime_reconnect_s"].get("type") == "not measured"
    ungated = next(c for c in suite.findall("testcase") if c.get("name") == "meeting_rejoin_s").find("system-out")
    assert ungated is not None and "not measured" in (ungated.text or "")
    summary = paths["summary"].read_text()
    assert "| realtime_reconnect_s | not measured | ≤ 60 s | ❌ FAIL |" in summary
    assert "| meeting_rejoin_s | not measured | not gated | reported |" in summary


def test_an_invalid_drill_with_no_samples_still_reports_and_escapes_error_texts(tmp_path: Path):
    errors = [f"stack did not start: {SCRIPT}", "ansi \x1b[31mred\x1b[0m output"]
    result = drill([Measure("rto_s", None, "s", 30.0)], timeline=[], errors=errors)
    assert result.exit_code == 2
    paths = write_drill_reports(result, tmp_path)
    assert paths["timeline"].read_bytes().startswith(PNG_MAGIC)

    suite = _suite(paths["junit"])  # parses although an error text held control characters
    valid = next(c for c in suite.findall("testcase") if c.get("name") == "drill_valid")
    error = valid.find("error")
    assert error is not None and SCRIPT in (error.get("message") or "")
    assert "red" in (error.text or "") and "\x1b" not in (error.text or "")
    assert (suite.get("failures"), suite.get("errors")) == ("1", "1")  # rto_s not measured, and drill_valid

    summary = paths["summary"].read_text()
    assert "INVALID (exit 2)" in summary and "**The drill is invalid:**" in summary

    html = paths["html"].read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<p class="verdict invalid">⚠️ INVALID (exit 2)</p>' in html


def test_html_is_self_contained_with_the_timeline(tmp_path: Path):
    html = write_drill_reports(drill(), tmp_path)["html"].read_text()
    images = re.findall(r'<img alt="timeline" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', html)
    assert len(images) == 1 and base64.b64decode(images[0]).startswith(PNG_MAGIC)
    assert '<table class="measures">' in html and '<table class="events">' in html
    assert "<td>promote the standby</td>" in html
    assert "http://" not in html and "https://" not in html  # nothing fetched from elsewhere


def test_the_timeline_marks_every_event_and_shades_the_rto():
    fig = timeline_figure(drill())
    axes = fig.get_axes()
    assert [ax.get_ylabel() for ax in axes] == ["writes/s", "error %", "p95 ms", "lag ms"]
    for ax in axes:
        vertical = [ln for ln in ax.get_lines() if isinstance(ln, Line2D) and len(set(ln.get_xdata())) == 1]
        assert sorted(float(ln.get_xdata()[0]) for ln in vertical) == [10.0, 13.5, 15.0, 17.0, 22.0]
        colours = {float(ln.get_xdata()[0]): ln.get_color() for ln in vertical}
        assert colours[10.0] == "tab:red" and colours[22.0] == "tab:green" and colours[15.0] == "tab:purple"
        spans = [p.get_x() for p in ax.patches]
        assert spans == [10.0]  # fault at 10 s + rto 12 s
        assert ax.patches[0].get_width() == 12.0
    labels = [t.get_text() for t in axes[0].texts]
    cut = "primary down for 3 s: fail …"  # cut to LABEL_CHARS
    assert labels == [
        "kill the primary",
        cut,
        "promote the standby",
        "switch the writer record",
        "first write accepted",
    ]
    error_line = axes[1].get_lines()[0]
    assert max(error_line.get_ydata()) == 100.0  # every write failed during the outage


def test_the_timeline_without_samples_keeps_its_events_in_view_and_takes_dollar_signs_as_text(tmp_path: Path):
    result = drill(timeline=[], measures=[])
    result.events.append(DrillEvent(30.0, "note", r"cost $\nosuchcommand$ here"))
    fig = timeline_figure(result)
    left, right = fig.get_axes()[-1].get_xlim()
    assert left <= 10.0 and right > 30.0
    assert not fig.get_axes()[0].patches  # no rto_s measure: nothing shaded
    # Rendering would raise on the unknown TeX command if the label were parsed as mathtext.
    assert write_drill_reports(result, tmp_path)["timeline"].read_bytes().startswith(PNG_MAGIC)


def _recovery(failback_ok: bool, recovery_s: float | None) -> DrillResult:
    phases = [
        DrillPhase("fault", 0.0, 5.0, True),
        DrillPhase("failover", 5.0, 95.0, True),
        DrillPhase("smoke", 95.0, 100.0, True),
        DrillPhase(
            "failback",
            100.0,
            400.0,
            failback_ok,
            [] if failback_ok else [f"resync failed: {SCRIPT}", "standby | lagging"],
        ),
        DrillPhase("smoke after failback", 400.0, 410.0, True),
    ]
    measures = [Measure("recovery_s", recovery_s, "s", 1800.0)] if recovery_s is not None else []
    return drill(measures, phases=phases, kind="recovery")


def test_a_recovery_drill_with_a_failed_phase_writes_its_record(tmp_path: Path):
    result = _recovery(failback_ok=False, recovery_s=252.0)
    paths = write_drill_reports(result, tmp_path)
    assert paths["recovery"] == tmp_path / "recovery.md"
    record = paths["recovery"].read_text()
    assert record.startswith("# Recovery test record: 2023-11-14\n")
    assert "| date | 2023-11-14 22:13:20 UTC |" in record and "| target | local reference stack |" in record
    assert "| failover | 5.0 s | 1 min 30 s | OK |" in record
    assert "| failback | 100.0 s | 5 min 0 s | FAILED |" in record
    issues = record.split("## Issues found\n", 1)[1].split("## Recovery time", 1)[0]
    assert f"- failback: resync failed: {SCRIPT}" in issues and "- failback: standby \\| lagging" in issues
    assert "4 min 12 s (`recovery_s`) against the 30-minute target: **met**." in record

    suite = _suite(paths["junit"])
    assert suite.get("name") == "harness.drill.recovery"
    assert len(suite.findall("testcase")) == 1 + 5 + 1  # recovery_s, five phases, drill_valid
    failures = _failures(suite)
    assert set(failures) == {"phase.failback"}
    assert "(and 1 more)" in (failures["phase.failback"].get("message") or "")
    assert "standby | lagging" in (failures["phase.failback"].text or "")

    summary = paths["summary"].read_text()
    assert "Failed: `phase failback`" in summary and "| failback | 5 min 0 s | ❌ FAILED |" in summary
    html = paths["html"].read_text()
    assert "<script>" not in html and "<pre>resync failed: &lt;script&gt;" in html


def test_a_clean_recovery_drill_records_no_issues_and_a_missing_recovery_time(tmp_path: Path):
    record = write_drill_reports(_recovery(failback_ok=True, recovery_s=None), tmp_path)["recovery"].read_text()
    assert "## Issues found\n\nnone\n" in record
    assert "Not measured (no `recovery_s` or `rto_s` measure): the 30-minute target is not shown met." in record


def test_a_recovery_time_over_half_an_hour_misses_the_target(tmp_path: Path):
    result = drill([Measure("rto_s", 2_400_000.0, "ms", 1_800_000.0)], kind="recovery")
    record = write_drill_reports(result, tmp_path)["recovery"].read_text()
    assert "40 min 0 s (`rto_s`) against the 30-minute target: **missed**." in record
