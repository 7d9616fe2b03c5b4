"""A drill's junit.xml: one testcase per measure, one per phase, and `drill_valid` (CI test tabs show the verdict).

testsuite harness.drill.<drill>
  testcase <measure>      classname drill.<drill>.<fault>   failure when gated and over the gate or not measured
  testcase phase.<name>   classname drill.<drill>.<fault>   failure with the phase's errors when it failed
  testcase drill_valid    classname drill.<drill>.<fault>   error (as the load report's validity checks) when
                                                            the drill itself broke (result.errors)
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from harness.model.drill import DrillResult
from harness.report.drill_text import drill_status, measure_reason, span_s

# Characters XML 1.0 cannot hold at all (ElementTree would write them and parsers would reject the file); error
# texts carry them from child processes' output (ANSI colour codes).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def render_drill_junit(result: DrillResult) -> str:
    classname = _x(f"drill.{result.drill}.{result.fault}")
    suites = ET.Element("testsuites", {"name": "harness"})
    suite = ET.SubElement(suites, "testsuite", {"name": _x(f"harness.drill.{result.drill}")})
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("run_id", result.run_id),
        ("verdict", drill_status(result)),
        ("target", result.target),
        ("fault", result.fault),
        ("synchronous_commit", "yes" if result.synchronous_commit else "no"),
    ):
        ET.SubElement(props, "property", {"name": name, "value": _x(value)})

    def case(name: str, seconds: float = 0.0) -> ET.Element:
        attrs = {"classname": classname, "name": _x(name), "time": f"{max(0.0, seconds):.3f}"}
        return ET.SubElement(suite, "testcase", attrs)

    for m in result.measures:
        reason = _x(measure_reason(m))
        if m.passed is False:
            kind = "not measured" if m.value is None else "over gate"
            ET.SubElement(case(m.name), "failure", {"message": reason, "type": kind}).text = reason
        else:
            ET.SubElement(case(m.name), "system-out").text = reason
    for p in result.phases:
        testcase = case(f"phase.{p.name}", p.seconds)
        text = _x("\n".join(p.errors) or f"phase {p.name} failed (no error recorded)")
        if not p.ok:
            more = f" (and {len(p.errors) - 1} more)" if len(p.errors) > 1 else ""
            message = _x((p.errors[0] if p.errors else f"phase {p.name} failed") + more)
            ET.SubElement(testcase, "failure", {"message": message, "type": "phase failed"}).text = text
        elif p.errors:  # an ok phase may still note what it retried
            ET.SubElement(testcase, "system-out").text = text
    valid = case("drill_valid")
    if result.errors:
        text = _x("\n".join(result.errors))
        ET.SubElement(valid, "error", {"message": _x(result.errors[0]), "type": "invalid"}).text = text

    cases = suite.findall("testcase")
    counts = {
        "tests": str(len(cases)),
        "failures": str(sum(1 for c in cases if c.find("failure") is not None)),
        "errors": str(sum(1 for c in cases if c.find("error") is not None)),
    }
    suites.attrib.update(counts)
    suite.attrib.update(
        {
            **counts,
            "skipped": "0",
            "time": f"{span_s(result):.3f}",
            "timestamp": datetime.fromtimestamp(result.started_unix_s, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        }
    )
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
