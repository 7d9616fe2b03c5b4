"""`--metrics-port`, `--metrics-bind`, `--metrics-linger` on the run commands: off by default, clear errors."""

from __future__ import annotations

import pytest

from harness.cli import build_parser, main
from harness.monitor import MetricsOptions
from harness.run.cli import metrics_options, options_from

build_parser()  # import the command modules outside captured stderr


def _metrics(*argv: str) -> MetricsOptions | None:
    return options_from(build_parser().parse_args(["load", *argv])).metrics


def test_metrics_are_off_unless_a_port_is_given() -> None:
    assert _metrics() is None
    assert _metrics("--metrics-port", "0") is None
    assert _metrics("--metrics-port", "9646") == MetricsOptions(port=9646, bind="127.0.0.1", linger_s=0.0)
    got = _metrics("--metrics-port", "9646", "--metrics-bind", "0.0.0.0", "--metrics-linger", "30s")
    assert got == MetricsOptions(port=9646, bind="0.0.0.0", linger_s=30.0)
    assert _metrics("--metrics-port", "9646", "--metrics-bind", "::").bind == "::"  # type: ignore[union-attr]


def test_a_locust_master_listens_on_every_address_unless_told_otherwise() -> None:
    args = build_parser().parse_args(["load", "--metrics-port", "9646"])
    args.master = True  # `--master` (distributed mode): Prometheus runs in another container or pod
    assert metrics_options(args) == MetricsOptions(port=9646, bind="0.0.0.0")
    args.metrics_bind = "127.0.0.1"
    assert metrics_options(args) == MetricsOptions(port=9646, bind="127.0.0.1")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--metrics-port", "http"], "--metrics-port: 'http' is not a TCP port (1 to 65535, e.g. 9646; 0 = off)"),
        (["--metrics-port", "70000"], "--metrics-port: '70000' is not a TCP port"),
        (["--metrics-port", "9646", "--metrics-bind", "master"], "--metrics-bind: 'master' is not an IP address"),
        (["--metrics-bind", "0.0.0.0"], "--metrics-bind needs --metrics-port (e.g. --metrics-port 9646"),
        (["--metrics-port", "9646", "--metrics-linger", "soon"], "--metrics-linger: 'soon' is not a duration"),
    ],
    ids=["name", "range", "bind", "bind-alone", "linger"],
)
def test_bad_metrics_flags_exit_2_before_anything_starts(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["smoke", *argv, "--host", "http://127.0.0.1:9"]) == 2
    assert message in capsys.readouterr().err
