"""deploy/prometheus and deploy/grafana: promtool accepts the config and the rules, the rules' unit tests pass
(each alert fires on its condition and not below it), and the dashboard asks only for metrics the exporter emits."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.run.exporter import METRIC_NAMES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian package prometheus, installed by scripts/install)"
)
_PROMQL_WORDS = {"sum", "by", "rate", "max", "ignoring", "group_left", "on", "without", "avg", "min", "vector"}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60, check=False)


@needs_promtool
def test_promtool_accepts_the_config_and_the_rules_and_their_unit_tests_pass() -> None:
    checks = (
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts_test.yml"),
    )
    for args in checks:
        done = _promtool(*args)
        assert done.returncode == 0, f"promtool {' '.join(args)}: {done.stdout}{done.stderr}"


def _metric_names(expr: str) -> set[str]:
    without_labels = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", "", expr)
    return {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_labels) if w.startswith("harness_")}


def _emitted(name: str) -> bool:
    return name.removesuffix("_total").removesuffix("_info") in METRIC_NAMES


def test_the_dashboard_and_the_alerts_use_only_emitted_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "harness.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    exprs += re.findall(r"expr: (.+)", (PROMETHEUS / "alerts.yml").read_text())
    used = set().union(*(_metric_names(e) for e in exprs))
    assert used, "no metric found in the dashboard"
    assert {name for name in used if not _emitted(name)} == set()
    # The deployment guide's key metrics each have a panel.
    titles = " ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for topic in ("request rate", "p95", "error rate", "delivery", "meeting join", "upload", "region share"):
        assert topic in titles, topic


def test_the_name_check_would_catch_a_metric_the_exporter_does_not_emit() -> None:
    assert _metric_names('sum(rate(harness_requests_total{name!~"a|b"}[1m])) / harness_nope') == {
        "harness_requests_total",
        "harness_nope",
    }
    assert not _emitted("harness_nope") and _emitted("harness_requests_total")
