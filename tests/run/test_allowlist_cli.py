"""The allow-list holds for every host of a target, at the edge of each command, before the first packet:
`harness smoke`/`run` and `harness users provision|cleanup` with DOMAIN_NAME (or LIVEKIT_URL, SUPABASE_URL_JAPAN)
pointing at a host nobody allowed exit 2 naming it, and the loopback SUPABASE_URL never sees a connection."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli import build_parser, main
from harness.errors import ConfigError
from harness.model import keys
from harness.model.target_config import load_target
from harness.run.target import Target, check_allowed, check_url, child_env, from_config

TARGET_VARS = ("SUPABASE_URL", "SUPABASE_URL_JAPAN", "LIVEKIT_URL", "DOMAIN_NAME", "HARNESS_ALLOW_HOSTS")

# Import every command module now, outside any test's captured stderr: the run functions bind `log=sys.stderr` as a
# default when imported, and a capture closed by an earlier test would then be written to.
build_parser()


class CountingListener:
    """A loopback TCP port that counts the connections it accepts (and closes them at once)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def listener(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingListener]:
    for name in TARGET_VARS:
        monkeypatch.delenv(name, raising=False)
    counting = CountingListener()
    yield counting
    counting.close()


def env_file(path: Path, listener: CountingListener, **extra: str) -> Path:
    lines = {"SUPABASE_URL": listener.url, "SUPABASE_ANON_KEY": keys.ANON_KEY, **extra}
    path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()), encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["smoke", "load"])
def test_a_run_refuses_a_domain_nobody_allowed_before_any_request(
    command: str, listener: CountingListener, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = env_file(tmp_path / "prod.env", listener, DOMAIN_NAME="evil.example")
    code = main([command, "--env-file", str(env), "--reports-dir", str(tmp_path / "reports"), "--run-id", "r"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"DOMAIN_NAME ({env}): evil.example is not a loopback address" in err
    assert "HARNESS_ALLOW_HOSTS=evil.example" in err and "--confirm-remote" in err
    assert listener.accepted == 0  # not even the preflight request went out


@pytest.mark.parametrize(
    ("name", "value"), [("LIVEKIT_URL", "wss://lk.evil.example"), ("SUPABASE_URL_JAPAN", "https://jp.evil.example")]
)
def test_a_run_refuses_any_other_host_nobody_allowed(
    name: str, value: str, listener: CountingListener, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = env_file(tmp_path / "prod.env", listener, **{name: value})
    code = main(["smoke", "--env-file", str(env), "--reports-dir", str(tmp_path / "reports"), "--run-id", "r"])
    assert code == 2
    assert f"{name} ({env}): " in capsys.readouterr().err
    assert listener.accepted == 0


@pytest.mark.parametrize("command", ["provision", "cleanup"])
def test_users_commands_refuse_a_domain_nobody_allowed_before_any_request(
    command: str, listener: CountingListener, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = env_file(tmp_path / "prod.env", listener, DOMAIN_NAME="evil.example")
    which = ["--count", "4", "--out", str(tmp_path / "c.json")] if command == "provision" else ["--prefix", "harness"]
    code = main(["users", command, *which, "--env-file", str(env)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"DOMAIN_NAME ({env}): evil.example is not a loopback address" in err
    assert listener.accepted == 0


def test_an_env_files_allow_list_applies_to_urls_from_responses(listener: CountingListener, tmp_path: Path) -> None:
    # The smoke check joins the LiveKit URL the token function returns: allowed by the env file's list, not only the
    # process environment's.
    env = env_file(tmp_path / "prod.env", listener, HARNESS_ALLOW_HOSTS="lk.example.com")
    target = from_config(load_target(env, environ={}))
    check_url(target, "the LiveKit URL the livekit-token function returned", "wss://lk.example.com", False)
    # ... and the Locust workers get the same list, since they check every host again.
    assert child_env(load_target(env, environ={}))["HARNESS_ALLOW_HOSTS"] == "lk.example.com"


def test_a_bare_target_checks_the_domain_it_carries(listener: CountingListener) -> None:
    with pytest.raises(ConfigError, match=r"^DOMAIN_NAME: evil\.example is not a loopback address"):
        check_allowed(Target(url=listener.url, env={"DOMAIN_NAME": "evil.example"}), confirm_remote=False)
