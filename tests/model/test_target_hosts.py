"""Every host a target sends traffic to passes the same allow-list rule: SUPABASE_URL, SUPABASE_URL_JAPAN,
LIVEKIT_URL, DOMAIN_NAME, and a URL the target hands out itself (the LiveKit URL its token function returns)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.model import keys
from harness.model.target_config import load_target, target_from_mapping

LOOPBACK = {"SUPABASE_URL": "http://127.0.0.1:54320", "SUPABASE_ANON_KEY": keys.ANON_KEY}


@pytest.mark.parametrize(
    ("name", "value", "host"),
    [
        ("DOMAIN_NAME", "evil.example", "evil.example"),
        ("SUPABASE_URL_JAPAN", "https://jp.evil.example", "jp.evil.example"),
        ("LIVEKIT_URL", "wss://lk.evil.example", "lk.evil.example"),
    ],
)
def test_each_host_of_a_loopback_target_is_checked(name: str, value: str, host: str) -> None:
    target = target_from_mapping({**LOOPBACK, name: value})
    with pytest.raises(ConfigError) as info:
        target.check_allowed()
    assert str(info.value) == (
        f"{name}: {host} is not a loopback address (127.0.0.0/8, ::1, localhost); the harness sends traffic "
        f"elsewhere only when HARNESS_ALLOW_HOSTS lists it (e.g. HARNESS_ALLOW_HOSTS={host}) or with --confirm-remote"
    )
    target_from_mapping({**LOOPBACK, name: value, "HARNESS_ALLOW_HOSTS": "*.evil.example,evil.example"}).check_allowed()
    target.check_allowed(confirmed=True)


def test_the_message_names_the_env_file(tmp_path: Path) -> None:
    env = tmp_path / "prod.env"
    env.write_text("SUPABASE_URL=http://127.0.0.1:9\nDOMAIN_NAME=evil.example\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^DOMAIN_NAME \({env}\): evil\.example is not a loopback address"):
        load_target(env, environ={}).check_allowed()
    # --target-url names SUPABASE_URL only: the domain still came from the file (or the environment).
    with pytest.raises(ConfigError, match=rf"^DOMAIN_NAME \({env}\): evil\.example"):
        load_target(env, environ={}, supabase_url="http://127.0.0.1:1").check_allowed()
    with pytest.raises(ConfigError, match=r"^DOMAIN_NAME: evil\.example"):
        load_target(None, environ={"DOMAIN_NAME": "evil.example"}, supabase_url="http://127.0.0.1:1").check_allowed()
    with pytest.raises(ConfigError, match=r"^SUPABASE_URL \(--target-url\): 10\.1\.2\.3 is not"):
        load_target(None, environ={"SUPABASE_ANON_KEY": keys.ANON_KEY}, supabase_url="http://10.1.2.3").check_allowed()


def test_hosts_lists_every_place_traffic_goes() -> None:
    target = target_from_mapping(
        {**LOOPBACK, "SUPABASE_URL_JAPAN": "http://[::1]:2", "LIVEKIT_URL": "ws://localhost:3", "DOMAIN_NAME": "Web.X"}
    )
    assert target.hosts() == [
        ("SUPABASE_URL", "127.0.0.1"),
        ("SUPABASE_URL_JAPAN", "::1"),
        ("LIVEKIT_URL", "localhost"),
        ("DOMAIN_NAME", "web.x"),
    ]


def test_a_url_from_a_response_passes_the_same_rule() -> None:
    target = target_from_mapping({**LOOPBACK, "HARNESS_ALLOW_HOSTS": "lk.example.com"})
    what = "the LiveKit URL the livekit-token function returned"
    target.check_url(what, "wss://lk.example.com")
    target.check_url(what, "ws://127.0.0.1:7880")
    with pytest.raises(ConfigError, match=rf"^{what}: 0\.0\.0\.0 is not a loopback address .* --confirm-remote$"):
        target.check_url(what, "ws://0.0.0.0:7880")
    with pytest.raises(ConfigError, match=rf"^{what}: 'no-scheme' is not a URL with a host$"):
        target.check_url(what, "no-scheme", confirmed=True)
    target.check_url(what, "wss://anything.example", confirmed=True)
