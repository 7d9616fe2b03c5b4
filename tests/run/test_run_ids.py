"""Run ids are one safe path component: every command that takes --run-id refuses one that would leave the reports
dir (exit 2, the valid form named, nothing written), and generated ids stay inside it whatever the profile's name."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.cli import build_parser, main
from harness.errors import ConfigError
from harness.model.profile import parse_profile
from harness.model.run_ids import RUN_ID_MAX_CHARS, check_run_id, safe_part

ESCAPE = "../../escape"
LOAD = "window_s = 1\n[load]\nusers = 1\nspawn_rate = 1\nduration_s = 3\n[scenarios]\nWebUser = 1\n"
FORM = "is not a run id; use 1-100 letters, digits, '.', '_' and '-', starting with a letter or digit"

# Import every command module now, outside any test's captured stderr: the run functions bind `log=sys.stderr` as a
# default when imported, and a capture closed by an earlier test would then be written to.
build_parser()


def dead_url() -> str:
    """A loopback URL nothing listens on (a run that got past the run id would stop at its preflight)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize(
    "value", ["..", ".", "", ESCAPE, "a/b", "/abs", "a\\b", "-rf", ".hidden", "a b", "x" * (RUN_ID_MAX_CHARS + 1)]
)
def test_unsafe_run_ids_are_refused(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_run_id(value)
    assert str(info.value) == f"--run-id: {value!r} {FORM} (e.g. smoke-nightly-42); it names one folder directly " + (
        "under the reports dir"
    )


@pytest.mark.parametrize("value", ["smoke", "load-20240601-120000-3fa2", "v1.2_rc-3", "A" * RUN_ID_MAX_CHARS])
def test_safe_run_ids_pass(value: str) -> None:
    assert check_run_id(value) == value


@pytest.mark.parametrize(
    "argv",
    [
        ["smoke"],
        ["load"],
        ["china"],
        ["run", "smoke"],
        ["capacity", "load", "--users-start", "2", "--users-step", "2", "--users-max", "4"],
    ],
    ids=lambda argv: argv[0],
)
def test_run_commands_refuse_a_run_id_outside_the_reports_dir(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "a" / "b" / "reports"
    code = main([*argv, "--host", dead_url(), "--reports-dir", str(reports), "--run-id", ESCAPE])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"--run-id: '{ESCAPE}' {FORM}" in err
    assert list(tmp_path.rglob("*")) == [], "nothing may be written, inside the reports dir or out of it"


@pytest.mark.parametrize("kind", ["failover", "recovery"])
def test_drills_refuse_a_run_id_outside_the_reports_dir(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "a" / "b" / "reports"
    code = main(["drill", kind, "--reports-dir", str(reports), "--run-id", ESCAPE])
    assert code == 2
    assert f"--run-id: '{ESCAPE}' {FORM}" in capsys.readouterr().err
    assert list(tmp_path.rglob("*")) == []


def test_a_generated_run_id_stays_in_the_reports_dir_whatever_the_profile_is_called(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(f'name = "../../up"\n{LOAD}', encoding="utf-8")
    reports = tmp_path / "a" / "b" / "reports"
    assert main(["run", str(profile), "--host", dead_url(), "--reports-dir", str(reports)]) == 2  # unreachable
    (folder,) = reports.iterdir()
    assert folder.name.startswith("up-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "p.toml"]
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b"]


def test_safe_part() -> None:
    assert safe_part("../../up") == "up" and safe_part("china load/ß") == "china-load" and safe_part("...") == "run"


def test_group_names_are_path_safe_too() -> None:
    # A group's name names files in the run's folder (profile-<group>.json, locust-worker-<group>-N.log).
    text = f'{LOAD}[groups."../../x"]\nnetwork = "baseline-lan"\n'
    with pytest.raises(ConfigError, match=r"groups\.\.\./\.\./x.*is not a group name"):
        parse_profile(text, "p.toml")


def test_callers_of_the_python_api_get_the_same_refusal(tmp_path: Path) -> None:
    import contextlib

    from harness.model.drill_profile import load_drill_profile
    from harness.run.drill_rig import DrillOptions, open_rig
    from harness.run.options import RunOptions
    from harness.run.orchestrator import run

    with pytest.raises(ConfigError, match=r"^--run-id: '\.\.' is not a run id"):
        run(RunOptions(profile="smoke", host=dead_url(), reports_dir=tmp_path / "r", run_id=".."))
    with contextlib.ExitStack() as cleanup, pytest.raises(ConfigError, match=r"^--run-id: 'a/b' is not a run id"):
        open_rig("failover", load_drill_profile("drill"), DrillOptions(tmp_path / "r", run_id="a/b"), cleanup)
    assert list(tmp_path.iterdir()) == []
