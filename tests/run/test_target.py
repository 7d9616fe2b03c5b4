"""The run's target on top of model.target_config: precedence, demo keys, child environment, and the safety rule over
every URL (SUPABASE_URL, SUPABASE_URL_JAPAN, LIVEKIT_URL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.model import keys
from harness.model.target_config import load_target
from harness.run.target import Target, check_allowed, from_config, resolve


def test_host_flag_beats_the_file_which_beats_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.env"
    path.write_text(f"SUPABASE_URL=https://file.example\nSUPABASE_ANON_KEY={keys.SERVICE_ROLE_KEY}\n")
    monkeypatch.setenv("SUPABASE_URL", "https://env.example")
    monkeypatch.setenv("SUPABASE_ANON_KEY", keys.ANON_KEY)
    monkeypatch.setenv("LIVEKIT_URL", "wss://lk.example")
    target = resolve("https://flag.example/", path)
    assert target.url == "https://flag.example"
    assert target.env["SUPABASE_ANON_KEY"] == keys.SERVICE_ROLE_KEY and target.env["LIVEKIT_URL"] == "wss://lk.example"
    assert resolve(None, path).url == "https://file.example"


def test_loopback_host_without_keys_gets_the_demo_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    target = resolve("http://127.0.0.1:54320", None)
    assert target.env["SUPABASE_ANON_KEY"] == keys.ANON_KEY
    assert target.env["SUPABASE_SERVICE_ROLE_KEY"] == keys.SERVICE_ROLE_KEY
    assert target.config is not None and repr(keys.ANON_KEY) not in repr(target.config)  # secrets stay hidden


def test_label_drops_credentials_and_query() -> None:
    url = "https://user:secret@abc.supabase.co:8443/base?apikey=x"
    assert Target(url=url).label == "https://abc.supabase.co:8443/base"


@pytest.mark.parametrize("url", ["http://127.0.0.1:54320", "http://localhost:1", "http://[::1]:8000"])
def test_loopback_targets_are_always_allowed(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_ALLOW_HOSTS", raising=False)
    check_allowed(Target(url=url), confirm_remote=False)


def _remote(allow: str) -> Target:
    environ = {
        "SUPABASE_URL": "https://abc.supabase.co",
        "SUPABASE_ANON_KEY": keys.ANON_KEY,
        "LIVEKIT_URL": "wss://meet.example.com",
        "HARNESS_ALLOW_HOSTS": allow,
    }
    return from_config(load_target(environ=environ))


def test_remote_target_needs_the_allow_list_or_confirmation() -> None:
    with pytest.raises(ConfigError, match=r"SUPABASE_URL: abc.supabase.co is not a loopback address"):
        check_allowed(_remote(""), confirm_remote=False)
    with pytest.raises(ConfigError, match=r"LIVEKIT_URL: meet.example.com is not a loopback address"):
        check_allowed(_remote("abc.supabase.co"), confirm_remote=False)
    check_allowed(_remote("abc.supabase.co, *.example.com"), confirm_remote=False)
    check_allowed(_remote(""), confirm_remote=True)


def test_wildcard_does_not_match_a_lookalike_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_ALLOW_HOSTS", "*.example.com")
    with pytest.raises(ConfigError, match=r"HARNESS_ALLOW_HOSTS=evilexample\.com"):
        check_allowed(Target(url="https://evilexample.com"), confirm_remote=False)
