"""The `harness` entry point: help, version, and errors turned into exit codes at the edge."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness import __version__
from harness.cli import build_parser, main


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


def _named_commands() -> list[tuple[str, list[str]]]:
    """Every `harness …` command line quoted in the package's messages and the docs: (where, argv words)."""
    root = Path(__file__).resolve().parents[1]
    sources = [*root.joinpath("harness").rglob("*.py"), *root.joinpath("docs").glob("*.md"), root / "README.md"]
    found: dict[tuple[str, ...], str] = {}
    for path in sources:
        for match in re.finditer(r"`harness ([a-z][^`]*)`", path.read_text(encoding="utf-8")):
            words = [w for w in match.group(1).split() if not w.startswith(("<", "[", "…", "{")) and "|" not in w]
            command = tuple(w for w in words if not w.startswith("-") or w in {"--help"})[:2]
            flags = tuple(w.split("=")[0] for w in words if w.startswith("--"))
            found.setdefault(command + flags, str(path.relative_to(root)))
    return [(where, list(words)) for words, where in sorted(found.items())]


@pytest.mark.parametrize(("where", "words"), _named_commands())
def test_every_command_a_message_or_doc_names_exists(where: str, words: list[str]) -> None:
    """A message telling the user to run `harness stack up` (which never existed) would fail here."""
    parser = build_parser()
    command = [w for w in words if not w.startswith("-")]
    flags = [w for w in words if w.startswith("-")]
    sub: argparse.ArgumentParser = parser
    for word in command:
        actions = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions:
            break  # the rest are positional arguments (a profile, a file)
        choices = actions[0].choices
        assert word in choices, f"{where}: `harness {' '.join(words)}`: no command {word!r}"
        sub = choices[word]
    known = {s for a in sub._actions for s in a.option_strings}
    for flag in flags:
        assert flag in known, f"{where}: `harness {' '.join(words)}`: {flag} is not an option of that command"
