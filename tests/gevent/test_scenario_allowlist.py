"""The load path applies the allow-list too, before any packet: a Locust process refuses a DOMAIN_NAME nobody allowed
at test start (web.py sends the web shell's requests there), and a meeting user refuses the LiveKit URL a token
function returns when that host is not allowed. The run then ends with exit code 2 and the message.

`ws://0.0.0.0:<port>` stands for a foreign host: it is not loopback by the rule (docs/safety.md), yet Linux connects
it to the local listener, so a connection that should not happen is counted without a packet leaving the machine."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import gevent
import pytest
from scenario_runs import load_locustfile, quick, run_users

from harness.procs.piece import PieceProcess
from harness.refstack.stack import PRIMARY_REGION, REGION_FACTORY
from harness.scenarios.settings import ScenarioSettings

FAST = ScenarioSettings(meeting_stay_s=1.0, meeting_ping_interval_s=0.3, provision_users=4)


class CountingListener:
    """A loopback port that counts the connections it accepts (and closes them)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        while True:
            conn, _ = self.sock.accept()
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._greenlet.kill()
        self.sock.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[CountingListener]:
    counting = CountingListener()
    yield counting
    counting.close()


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory, listener: CountingListener) -> Iterator[str]:
    """A Singapore region whose token function names a LiveKit server on a host nobody allowed."""
    folder = tmp_path_factory.mktemp("region")
    options = {"region": PRIMARY_REGION, "data_dir": str(folder / "data"), "bcrypt_cost": 4,
               "livekit_url": f"ws://0.0.0.0:{listener.port}"}  # fmt: skip
    piece = PieceProcess("primary", REGION_FACTORY, folder / "primary.log", options=options)
    try:
        yield f"http://127.0.0.1:{piece.port}"
    finally:
        piece.stop()


@pytest.fixture(autouse=True)
def no_target_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SUPABASE_URL", "SUPABASE_URL_JAPAN", "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET",
                 "DOMAIN_NAME", "HARNESS_ALLOW_HOSTS"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def test_a_domain_nobody_allowed_stops_the_web_users_before_any_request(
    listener: CountingListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOMAIN_NAME", "0.0.0.0")
    web = load_locustfile("web")
    host = f"http://127.0.0.1:{listener.port}"
    run = run_users([quick(web.WebUser)], host, 2, FAST, min_s=0.5, max_s=5, done=lambda r: bool(r.fired))
    assert run.state is not None and run.state.error is not None
    assert run.state.error.startswith("DOMAIN_NAME: 0.0.0.0 is not a loopback address")
    assert "HARNESS_ALLOW_HOSTS=0.0.0.0" in run.state.error and "HARNESS_CONFIRM_REMOTE=1" in run.state.error
    assert run.environment.process_exit_code == 2
    assert run.fired == [] and listener.accepted == 0


def test_a_livekit_url_from_the_token_function_is_checked_before_the_join(
    region: str, listener: CountingListener
) -> None:
    meetings = load_locustfile("meetings")
    before = listener.accepted
    run = run_users(
        [quick(meetings.MeetingUser)], region, 2, FAST, min_s=0.5, max_s=20,
        done=lambda r: r.state is not None and r.state.error is not None,
    )  # fmt: skip
    assert run.state is not None and run.state.error is not None, run.failures()
    assert run.state.error.startswith(
        "the LiveKit URL the livekit-token function returned: 0.0.0.0 is not a loopback address"
    )
    assert "HARNESS_ALLOW_HOSTS=0.0.0.0" in run.state.error
    assert run.environment.process_exit_code == 2
    assert "FUNC livekit-token" in run.names()  # the token was fetched, from the allowed target ...
    assert listener.accepted == before  # ... and the host it named never got a connection
    assert not Path(run.state.provisioned_path or "/nonexistent").exists()  # users removed at quit
