"""Pieces of the reference stack in other containers (docker-compose.yml): `target up` takes their URLs, refuses bad
ones before anything starts, and a run told HARNESS_REFERENCE_STACK=1 keeps the groups' country claims.
The URLs' wiring across processes is proven in tests/deploy/test_compose_wiring.py."""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.refstack.stack import connect_host
from harness.run.target import resolve
from harness.scenarios.settings import REFERENCE_STACK


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--only", "edge", "--primary-url", "ftp://regions:54321"],
         "--primary-url: 'ftp://regions:54321' is not a http or https URL with a host (e.g. http://regions:54321)"),
        (["--only", "edge", "--replica-url", "http://regions:99999"],
         "--replica-url: 'http://regions:99999' is not a http or https URL with a host (e.g. http://regions:54322)"),
        (["--only", "primary", "--livekit-url", "http://livekit:7880"],
         "--livekit-url: 'http://livekit:7880' is not a ws or wss URL with a host (e.g. ws://livekit:7880)"),
        (["--only", "livekit", "--livekit-url", "ws://livekit:7880"],
         "--livekit-url names a livekit running elsewhere, but this stack starts one too; drop the URL, or leave "
         "'livekit' out of --only"),
        (["--only", "primary", "--primary-url", "http://regions:54321"],
         "--primary-url names a primary running elsewhere, but this stack starts one too; drop the URL, or leave "
         "'primary' out of --only"),
    ],
)  # fmt: skip
def test_target_up_refuses_bad_urls_of_pieces_elsewhere(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["target", "up", "--port", "0", *argv]) == 2
    assert capsys.readouterr().err == f"harness: error: {message}\n"


def test_a_wildcard_bind_is_reached_on_loopback() -> None:
    assert [connect_host(h) for h in ("0.0.0.0", "::", "127.3.4.5")] == ["127.0.0.1", "127.0.0.1", "127.3.4.5"]


@pytest.mark.parametrize(("value", "reference"), [(None, False), ("0", False), ("1", True)])
def test_reference_stack_elsewhere_keeps_country_claims(
    value: str | None, reference: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv(REFERENCE_STACK, raising=False)
    else:
        monkeypatch.setenv(REFERENCE_STACK, value)
    assert resolve("http://127.0.0.1:54320", None).reference is reference
