"""The `harness` entry point: help, version, and errors turned into exit codes at the edge."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness import __version__
from harness.cli import main


def test_version_prints_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"harness {__version__}"


def test_help_lists_command_groups(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "target" in out
    assert "Exit codes" in out


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: harness" in capsys.readouterr().out


def test_config_error_becomes_exit_2_with_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["target", "up", "--port", "70000", "--region", "ap-southeast-1"]) == 2
    err = capsys.readouterr().err
    assert "--port: 70000 is not a TCP port (0-65535; 0 lets the OS choose)" in err


def test_console_script_runs_as_module() -> None:
    done = subprocess.run([sys.executable, "-m", "harness", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert __version__ in done.stdout


def test_every_command_has_a_working_help(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import build_parser

    subparsers = build_parser()._subparsers
    assert subparsers is not None
    commands = [name for action in subparsers._group_actions for name in action.choices]  # type: ignore[attr-defined]
    assert {"smoke", "load", "china", "target", "net", "toxiproxy", "gate", "report", "users"} <= set(commands)
    for command in commands:
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0, command
        assert f"usage: harness {command}" in capsys.readouterr().out
