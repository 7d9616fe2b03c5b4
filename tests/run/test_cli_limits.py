"""Sizes on the command line have upper bounds that catch typos (`--users 10000000`): exit 2 naming the flag, the
value and the bound, before anything starts; HARNESS_LIMITS=off lifts them (harness/model/limits.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.cli import build_parser, main

# Import every command module now, outside any test's captured stderr (the run functions bind `log=sys.stderr`).
build_parser()

TYPO = "a command line may ask for (a typo?); if you mean it, set HARNESS_LIMITS=off"
CAPACITY = ["capacity", "load"]


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["load", "--users", "10000000"], "--users: '10000000' is more than 1,000,000 users, the most"),
        (["smoke", "--duration", "200h"], "--duration: '200h' is more than 7 days (168h), the most"),
        (["load", "--spawn-rate", "50000"], "--spawn-rate: '50000' is more than 10,000 users started per second"),
        (["load", "--workers", "5000"], "--workers: '5000' is more than 1,024 local workers"),
        (
            [*CAPACITY, "--users-start", "100", "--users-step", "100", "--users-max", "20000000"],
            "--users-max: '20000000' is more than 1,000,000 users",
        ),
        (
            [*CAPACITY, "--start", "100", "--step", "100", "--max", "5000000"],
            "--max: '5000000' is more than 1,000,000 iterations/s",
        ),
        (
            [*CAPACITY, "--users-start", "10", "--users-step", "10", "--users-max", "20", "--hold", "48h"],
            "--hold: '48h' is more than 1 day (24h)",
        ),
        (
            [*CAPACITY, "--start", "10", "--step", "10", "--max", "20", "--max-users", "3000000"],
            "--max-users: '3000000' is more than 1,000,000 users",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else " ".join(value[:1] + value[-2:-1]),
)
def test_a_size_past_its_bound_is_refused_before_anything_starts(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HARNESS_LIMITS", raising=False)
    reports = tmp_path / "reports"
    code = main([*argv, "--host", dead_url(), "--reports-dir", str(reports), "--run-id", "r"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and TYPO in err
    assert not reports.exists()  # refused before the run's folder, let alone a process


@pytest.mark.parametrize(
    "argv",
    [
        ["drill", "failover", "--fault-at", "10000000"],
        ["drill", "failover", "--hold", "100000"],
        ["drill", "recovery", "--max-duration", "1e9"],
        ["users", "provision", "--count", "10000000"],
    ],
    ids=lambda argv: " ".join(argv[:3]),
)
def test_drill_and_users_flags_have_bounds_too(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HARNESS_LIMITS", raising=False)
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[2]}: '{argv[3]}' is more than" in err and TYPO in err


def test_harness_limits_off_lifts_the_bounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_LIMITS", "off")
    sizes = ["--users", "2000000", "--spawn-rate", "20000", "--duration", "200h"]
    code = main(["load", *sizes, "--host", dead_url(), "--reports-dir", str(tmp_path), "--run-id", "r"])
    err = capsys.readouterr().err
    assert code == 2 and "does not answer" in err and "more than" not in err  # got as far as the preflight
    assert build_parser().parse_args(["users", "provision", "--count", "2000000"]).count == 2_000_000


def test_sizes_within_the_bounds_pass(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.run.cli import options_from

    monkeypatch.delenv("HARNESS_LIMITS", raising=False)
    args = build_parser().parse_args(
        ["load", "--users", "1000000", "--spawn-rate", "10000", "--duration", "168h", "--workers", "1024"]
    )
    options = options_from(args)
    sizes = (options.users, options.spawn_rate, options.duration_s, options.workers)
    assert sizes == (1_000_000, 10_000, 604_800, 1024)
