"""junit.xml: one testcase per gate, validity check and smoke check (CI test tabs show the verdict)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from harness.gates.verdict import Verdict
from harness.model.result import Result


def render_junit(result: Result, verdict: Verdict) -> str:
    failures = sum(1 for g in verdict.gates if g.status == "failed")
    errors = sum(1 for g in verdict.gates if g.status == "invalid")
    counts = {"tests": str(len(verdict.gates)), "failures": str(failures), "errors": str(errors)}
    suites = ET.Element("testsuites", {"name": "harness", **counts})
    suite = ET.SubElement(
        suites,
        "testsuite",
        {
            "name": f"harness.{result.run.profile}",
            **counts,
            "skipped": "0",
            "time": f"{result.run.duration_s:.3f}",
            "timestamp": datetime.fromtimestamp(result.run.started_s, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (("run_id", result.run.run_id), ("verdict", verdict.status), ("target", result.run.target)):
        ET.SubElement(props, "property", {"name": name, "value": value})
    for g in verdict.gates:
        case = ET.SubElement(suite, "testcase", {"classname": f"harness.{g.kind}", "name": g.name, "time": "0"})
        if g.status == "failed":
            ET.SubElement(case, "failure", {"message": g.reason, "type": "failed"}).text = g.reason
        elif g.status == "invalid":
            ET.SubElement(case, "error", {"message": g.reason, "type": "invalid"}).text = g.reason
        else:
            ET.SubElement(case, "system-out").text = g.reason
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
