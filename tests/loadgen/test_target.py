"""Target resolution and the safety rule: where load may go, read from flags, env files and the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.loadgen.target import Target, check_allowed, from_env, read_env_file, require_keys
from harness.refstack import keys


def test_env_file_reads_exports_quotes_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "production.env"
    path.write_text(
        "# deployment\nexport SUPABASE_URL=https://abc.supabase.co\nSUPABASE_ANON_KEY='anon'\nDOMAIN_NAME=\"app.example\"\n\n"
    )
    assert read_env_file(path) == {
        "SUPABASE_URL": "https://abc.supabase.co",
        "SUPABASE_ANON_KEY": "anon",
        "DOMAIN_NAME": "app.example",
    }


def test_env_file_bad_line_names_file_line_and_form(tmp_path: Path) -> None:
    path = tmp_path / "bad.env"
    path.write_text("SUPABASE_URL=https://x\nthis is not a setting\n")
    with pytest.raises(
        ConfigError, match=r"bad.env:2: not a KEY=VALUE line \(e.g. SUPABASE_URL=https://x.supabase.co\)"
    ):
        read_env_file(path)


def test_host_flag_beats_the_file_which_beats_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "t.env"
    path.write_text("SUPABASE_URL=https://file.example\nSUPABASE_ANON_KEY=from-file\n")
    environ = {"SUPABASE_URL": "https://env.example", "SUPABASE_ANON_KEY": "from-env", "LIVEKIT_URL": "wss://lk"}
    target = from_env("https://flag.example/", path, environ)
    assert target.url == "https://flag.example"
    assert target.env["SUPABASE_ANON_KEY"] == "from-file" and target.env["LIVEKIT_URL"] == "wss://lk"
    assert from_env(None, path, environ).url == "https://file.example"


def test_no_target_says_how_to_give_one() -> None:
    with pytest.raises(ConfigError, match=r"no target: give --host URL or --env-file production\.env"):
        from_env(None, None, {})


def test_loopback_host_without_keys_gets_the_demo_keys_and_a_remote_one_must_bring_its_own() -> None:
    assert from_env("http://127.0.0.1:54320", None, {}).env["SUPABASE_ANON_KEY"] == keys.ANON_KEY
    remote = from_env("https://abc.supabase.co", None, {})
    with pytest.raises(ConfigError, match=r"SUPABASE_ANON_KEY: missing for abc\.supabase\.co"):
        require_keys(remote)


def test_label_drops_credentials_and_query() -> None:
    assert (
        Target(url="https://user:secret@abc.supabase.co:8443/base?apikey=x").label
        == "https://abc.supabase.co:8443/base"
    )


@pytest.mark.parametrize("url", ["http://127.0.0.1:54320", "http://localhost:1", "http://[::1]:8000"])
def test_loopback_targets_are_always_allowed(url: str) -> None:
    check_allowed(Target(url=url), confirm_remote=False, environ={})


def test_remote_target_needs_the_allow_list_or_confirmation() -> None:
    target = Target(url="https://abc.supabase.co", env={"LIVEKIT_URL": "wss://meet.example.com"})
    with pytest.raises(ConfigError, match=r"SUPABASE_URL: abc.supabase.co is not a loopback address"):
        check_allowed(target, confirm_remote=False, environ={})
    with pytest.raises(ConfigError, match=r"LIVEKIT_URL: meet.example.com is not a loopback address"):
        check_allowed(target, confirm_remote=False, environ={"HARNESS_ALLOW_HOSTS": "abc.supabase.co"})
    check_allowed(target, confirm_remote=False, environ={"HARNESS_ALLOW_HOSTS": "abc.supabase.co, *.example.com"})
    check_allowed(target, confirm_remote=True, environ={})


def test_wildcard_does_not_match_a_lookalike_domain() -> None:
    with pytest.raises(ConfigError):
        check_allowed(
            Target(url="https://evilexample.com"),
            confirm_remote=False,
            environ={"HARNESS_ALLOW_HOSTS": "*.example.com"},
        )
