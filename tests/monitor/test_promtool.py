"""deploy/prometheus/ passes Debian's promtool (installed by scripts/install with the prometheus package): the
scrape config and rules are valid, and each alert fires on its condition and only then (alerts_test.yml)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (scripts/install adds prometheus)")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_scrape_config_and_its_rule_file_are_valid() -> None:
    done = _promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout


def test_the_alert_rules_are_valid() -> None:
    done = _promtool("check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 4 rules found" in done.stdout


def test_each_alert_fires_on_its_condition() -> None:
    done = _promtool("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    tested = (PROMETHEUS_DIR / "alerts_test.yml").read_text(encoding="utf-8")
    rules = (PROMETHEUS_DIR / "alerts.yml").read_text(encoding="utf-8")
    for line in rules.splitlines():
        if line.strip().startswith("- alert:"):
            assert f"alertname: {line.split(':', 1)[1].strip()}" in tested  # every alert has its unit test
