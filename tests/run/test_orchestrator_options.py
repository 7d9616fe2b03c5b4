"""The orchestrator's pure parts (overrides, durations, progress lines), and `harness smoke` end to end on a fresh
reference stack it starts itself."""

from __future__ import annotations

import io
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.model.profile import load_profile, parse_profile, resolve_profile
from harness.model.result import load_result
from harness.run.cli import parse_duration_s
from harness.run.options import FALLBACK_LOCUSTFILE, RunOptions, choose_locustfile, effective_profile
from harness.run.progress import ProgressPrinter
from harness.run.smoke import CHECK_NAMES


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("90", 90), ("1500ms", 1.5)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["5x", "-3s", "0", "s", ""])
def test_bad_durations_name_the_value_and_the_valid_form(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--duration: .* is not a duration \(e\.g\. 30s, 5m, 1h\)"):
        parse_duration_s(text)


def test_overrides_change_the_shape_and_keep_the_rest() -> None:
    smoke = load_profile(resolve_profile("smoke"))
    new = effective_profile(smoke, RunOptions("smoke", duration_s=10, users=6), "profiles/smoke.toml")
    assert (new.load.duration_s, new.load.users, new.load.spawn_rate) == (10, 6, smoke.load.spawn_rate)
    assert new.gates == smoke.gates and new.plateau_s() == (3.5, 10)


def test_overrides_on_a_staged_profile_are_refused() -> None:
    spike = load_profile(resolve_profile("spike"))
    with pytest.raises(ConfigError, match=r"--duration, --users: profiles/spike.toml uses \[\[load.stages\]\]"):
        effective_profile(spike, RunOptions("spike", duration_s=10, users=5), "profiles/spike.toml")


def test_a_duration_too_short_for_a_plateau_says_the_minimum() -> None:
    smoke = load_profile(resolve_profile("smoke"))  # ramp 2 s + warmup 2 s, 1 s windows
    with pytest.raises(ConfigError, match=r"--duration: 4 s leaves a plateau of 0 s, .* give at least 5 s"):
        effective_profile(smoke, RunOptions("smoke", duration_s=4), "profiles/smoke.toml")


def test_profile_without_workers_survives_the_effective_profile_round_trip() -> None:
    text = "[load]\nusers = 2\nspawn_rate = 2\nduration_s = 20\n[scenarios]\nWebUser = 1\n"
    profile = parse_profile(text, "p.toml")
    assert profile.workers is None
    assert effective_profile(profile, RunOptions("p", users=3), "p.toml").workers is None


def test_locustfile_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    explicit = tmp_path / "mine.py"
    explicit.write_text("")
    assert choose_locustfile(explicit) == (explicit, False)
    with pytest.raises(ConfigError, match=r"--locustfile: .*nope\.py does not exist"):
        choose_locustfile(tmp_path / "nope.py")
    shipped, fallback = choose_locustfile(None)  # no ./locustfiles here: the mix shipped in the package
    assert (shipped.name, shipped.parent.name, fallback) == ("mixed.py", "locustfiles", False)
    assert shipped.is_file() and "MessagingUser" in shipped.read_text(encoding="utf-8")
    own = tmp_path / "locustfiles" / "mixed.py"
    own.parent.mkdir()
    own.write_text("")
    assert choose_locustfile(None) == (Path("locustfiles") / "mixed.py", False)
    assert choose_locustfile(FALLBACK_LOCUSTFILE) == (FALLBACK_LOCUSTFILE, True)


def test_progress_lines_are_plain_lines_with_every_figure() -> None:
    log = io.StringIO()
    printer = ProgressPrinter("load", log, interval_s=0)
    assert printer.line(None) == "harness: load  starting Locust"
    waiting = {"state": "waiting", "started_s": None, "workers": 1, "workers_expected": 2}
    assert printer.line(waiting) == "harness: load  waiting for workers 1/2"
    base = {"state": "running", "started_s": 100.0, "planned_s": 60, "users": 40, "workers": 2, "workers_expected": 2}
    printer.line({**base, "t_s": 110.0, "requests": 0, "p95_ms": None, "error_pct": 0})
    line = printer.line({**base, "t_s": 114.0, "requests": 4000, "p95_ms": 1234.0, "error_pct": 1.5})
    assert line == ("harness: load  14s/60s  users 40  workers 2/2  rps 1000.0  p95 1,234 ms  errors 1.50 %  46 s left")
    printer.maybe_print(None)
    assert log.getvalue().endswith("\n") and "\r" not in log.getvalue()


@pytest.mark.slow
def test_smoke_passes_end_to_end_on_a_fresh_reference_stack(tmp_path: Path) -> None:
    # The fallback light load keeps this test independent of locustfiles/ (tested by their own suite).
    done = subprocess.run(
        [sys.executable, "-m", "harness", "smoke", "--duration", "8s", "--reports-dir", str(tmp_path),
         "--run-id", "smoke", "--locustfile", str(FALLBACK_LOCUSTFILE)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    out = tmp_path / "smoke"
    for name in ("result.json", "junit.xml", "summary.md", "report.html", "profile.json", "locust_stats.csv"):
        assert (out / name).is_file(), name
    result = load_result(out / "result.json")
    assert [c.name for c in result.run.smoke_checks] == CHECK_NAMES
    assert result.run.workers_seen == 1 and not result.run.partial
    cases = {c.get("name"): c for c in ET.parse(out / "junit.xml").getroot().iter("testcase")}
    assert all(f"smoke.{name}" in cases for name in CHECK_NAMES)
    assert not any(c.find("failure") is not None or c.find("error") is not None for c in cases.values())
    assert "users 8" in done.stderr and "\r" not in done.stderr
