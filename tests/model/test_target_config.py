"""Target configuration: env vars and env files, validation messages (pinned), secrets kept out of repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.model import keys
from harness.model.target_config import (
    Names,
    Secret,
    TargetConfig,
    load_target,
    names_from_mapping,
    read_env_file,
    target_configured,
    target_from_mapping,
)

ANON = keys.ANON_KEY
SERVICE = keys.SERVICE_ROLE_KEY
BASE = {"SUPABASE_URL": "https://abcdefgh.supabase.co", "SUPABASE_ANON_KEY": ANON}


def error_of(values: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        target_from_mapping(values)
    return str(info.value)


def test_full_environment_is_read() -> None:
    target = target_from_mapping(
        {
            **BASE,
            "SUPABASE_URL": "https://abcdefgh.supabase.co/",
            "SUPABASE_SERVICE_ROLE_KEY": SERVICE,
            "SUPABASE_URL_JAPAN": "https://japan.example.com",
            "SUPABASE_ANON_KEY_JAPAN": "sb_publishable_abc123",
            "LIVEKIT_URL": "wss://livekit.example.com",
            "LIVEKIT_API_KEY": "APIkey",
            "LIVEKIT_API_SECRET": "lk-secret-value",
            "DOMAIN_NAME": "chat.example.com",
            "HARNESS_TABLE_MESSAGES": "chat_messages",
            "HARNESS_REGION_HEADER": "x-served-by",
            "HARNESS_ALLOW_HOSTS": "Staging.example.com, *.supabase.co",
            "HARNESS_HTTP_TIMEOUT_S": "12.5",
        }
    )
    assert target.supabase_url == "https://abcdefgh.supabase.co"
    assert target.anon_key.reveal() == ANON
    assert target.service_role_key is not None and target.service_role_key.reveal() == SERVICE
    assert target.supabase_url_japan == "https://japan.example.com"
    assert target.livekit_url == "wss://livekit.example.com"
    assert target.livekit_api_secret == Secret("lk-secret-value")
    assert target.domain_name == "chat.example.com"
    assert target.names == Names(messages="chat_messages", region_header="x-served-by")
    assert target.allow_hosts == ("staging.example.com", "*.supabase.co")
    assert target.http_timeout_s == 12.5


def test_secrets_never_in_repr_or_str() -> None:
    target = target_from_mapping({**BASE, "SUPABASE_SERVICE_ROLE_KEY": SERVICE, "LIVEKIT_API_SECRET": "lk-secret"})
    for text in (repr(target), str(target), repr(target.anon_key), str(target.service_role_key)):
        assert ANON not in text and SERVICE not in text and "lk-secret" not in text
    assert "***" in repr(target.anon_key)


def test_missing_url_says_how_to_point_at_a_target() -> None:
    message = error_of({"SUPABASE_ANON_KEY": ANON})
    assert message.startswith(
        "SUPABASE_URL is not set: no target to test. To point the harness at one, set SUPABASE_URL"
    )
    assert "--env-file FILE" in message


def test_missing_anon_key_names_it() -> None:
    message = error_of({"SUPABASE_URL": "https://abcdefgh.supabase.co"})
    assert message.startswith("SUPABASE_ANON_KEY is not set;")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SUPABASE_URL", "abcdefgh.supabase.co",
         "SUPABASE_URL: 'abcdefgh.supabase.co' is not an http(s) URL (e.g. https://abcdefgh.supabase.co)"),
        ("SUPABASE_URL", "https://x.supabase.co/rest/v1",
         "SUPABASE_URL: 'https://x.supabase.co/rest/v1' has a path or query; give the project's base URL only "
         "(e.g. https://abcdefgh.supabase.co, without /rest/v1)"),
        ("SUPABASE_URL", "http://127.0.0.1:99999",
         "SUPABASE_URL: 'http://127.0.0.1:99999' has an invalid port (e.g. http://127.0.0.1:54321)"),
        ("SUPABASE_URL_JAPAN", "ftp://japan",
         "SUPABASE_URL_JAPAN: 'ftp://japan' is not an http(s) URL (e.g. https://abcdefgh.supabase.co)"),
        ("LIVEKIT_URL", "livekit.example.com",
         "LIVEKIT_URL: 'livekit.example.com' is not a ws(s) or http(s) URL (e.g. wss://livekit.example.com)"),
        ("DOMAIN_NAME", "https://chat.example.com",
         "DOMAIN_NAME: 'https://chat.example.com' is not a domain name (e.g. chat.example.com, no scheme)"),
        ("HARNESS_TABLE_MESSAGES", "messages; drop",
         "HARNESS_TABLE_MESSAGES: 'messages; drop' is not a name (letters, digits, _ and -, e.g. messages)"),
        ("HARNESS_HTTP_TIMEOUT_S", "30s",
         "HARNESS_HTTP_TIMEOUT_S: '30s' is not a positive number of seconds (e.g. 30)"),
        ("HARNESS_HTTP_TIMEOUT_S", "-1",
         "HARNESS_HTTP_TIMEOUT_S: '-1' is not a positive number of seconds (e.g. 30)"),
        ("HARNESS_ALLOW_HOSTS", "ok.example.com,bad host",
         "HARNESS_ALLOW_HOSTS: 'bad host' is not a host name; give a comma-separated list of hosts "
         "(e.g. staging.example.com,*.supabase.co)"),
    ],
)  # fmt: skip
def test_bad_value_names_variable_value_and_form(name: str, value: str, expected: str) -> None:
    assert error_of({**BASE, name: value}) == expected


def test_bad_key_is_described_not_quoted() -> None:
    secret = "not-a-key-but-a-secret-value"
    message = error_of({**BASE, "SUPABASE_SERVICE_ROLE_KEY": secret})
    assert secret not in message
    assert message == (
        f"SUPABASE_SERVICE_ROLE_KEY: the value ({len(secret)} characters, not shown) is not a Supabase key; expected "
        "a JWT (three base64url parts separated by dots, eyJ…) or an sb_publishable_… / sb_secret_… key"
    )


def test_env_file_syntax(tmp_path: Path) -> None:
    env = tmp_path / "production.env"
    env.write_text(
        "# production settings\n"
        "\n"
        f"export SUPABASE_URL=https://abcdefgh.supabase.co   # Singapore\n"
        f'SUPABASE_ANON_KEY="{ANON}"\n'
        "DOMAIN_NAME='chat.example.com'\n"
        "LIVEKIT_API_KEY=\n"
    )
    assert read_env_file(env) == {
        "SUPABASE_URL": "https://abcdefgh.supabase.co",
        "SUPABASE_ANON_KEY": ANON,
        "DOMAIN_NAME": "chat.example.com",
        "LIVEKIT_API_KEY": "",
    }
    target = load_target(env, environ={})
    assert target.domain_name == "chat.example.com" and target.livekit_api_key is None
    assert target.source == str(env)


def test_env_file_wins_over_environment(tmp_path: Path) -> None:
    env = tmp_path / "production.env"
    env.write_text("SUPABASE_URL=https://from-file.supabase.co\n")
    environ = {**BASE, "SUPABASE_URL": "https://from-env.supabase.co"}
    assert load_target(env, environ=environ).supabase_url == "https://from-file.supabase.co"
    assert load_target(None, environ=environ).supabase_url == "https://from-env.supabase.co"


def test_env_file_errors_name_file_and_line_without_content(tmp_path: Path) -> None:
    env = tmp_path / "bad.env"
    env.write_text(f"SUPABASE_URL=https://x.supabase.co\n{SERVICE}\n")
    with pytest.raises(ConfigError) as info:
        read_env_file(env)
    assert str(info.value).startswith(f"{env}:2: expected NAME=VALUE (e.g. SUPABASE_URL=https://x.supabase.co)")
    assert SERVICE not in str(info.value)
    env.write_text('SUPABASE_ANON_KEY="abc\n')
    with pytest.raises(ConfigError, match=r"bad.env:1: SUPABASE_ANON_KEY: the value opens a \" quote but never"):
        read_env_file(env)
    with pytest.raises(ConfigError, match=r"missing.env: cannot read env file: No such file"):
        read_env_file(tmp_path / "missing.env")


def test_file_source_appears_in_messages(tmp_path: Path) -> None:
    env = tmp_path / "production.env"
    env.write_text("SUPABASE_URL=nope\n")
    with pytest.raises(ConfigError) as info:
        load_target(env, environ={})
    assert str(info.value).startswith(f"SUPABASE_URL ({env}): 'nope' is not an http(s) URL")


def test_loopback_target_url_gets_local_demo_keys() -> None:
    target = load_target(None, environ={}, supabase_url="http://127.0.0.1:54321")
    assert target.anon_key.reveal() == ANON
    assert target.service_role_key is not None and target.service_role_key.reveal() == SERVICE
    assert target.is_loopback()
    with pytest.raises(ConfigError, match="SUPABASE_ANON_KEY is not set"):
        load_target(None, environ={}, supabase_url="https://abcdefgh.supabase.co")


def test_check_allowed() -> None:
    remote = target_from_mapping({**BASE, "HARNESS_ALLOW_HOSTS": "*.example.com"})
    with pytest.raises(ConfigError) as info:
        remote.check_allowed()
    assert str(info.value) == (
        "SUPABASE_URL: abcdefgh.supabase.co is not a loopback address (127.0.0.0/8, ::1, localhost); the harness "
        "sends traffic elsewhere only when HARNESS_ALLOW_HOSTS lists it "
        "(e.g. HARNESS_ALLOW_HOSTS=abcdefgh.supabase.co) or with --confirm-remote"
    )
    remote.check_allowed(confirmed=True)
    target_from_mapping({**BASE, "HARNESS_ALLOW_HOSTS": "*.supabase.co"}).check_allowed()
    target_from_mapping({**BASE, "SUPABASE_URL": "http://[::1]:8000"}).check_allowed()
    target_from_mapping({**BASE, "SUPABASE_URL": "http://localhost:8000"}).check_allowed()


def test_service_key_required_only_where_needed() -> None:
    target = target_from_mapping(BASE)
    with pytest.raises(ConfigError, match=r"^SUPABASE_SERVICE_ROLE_KEY is not set \(environment\); provisioning"):
        target.require_service_key("provisioning test users")


def test_target_configured() -> None:
    assert not target_configured(None, {})
    assert target_configured(None, {"SUPABASE_URL": "https://x.supabase.co"})
    assert target_configured(Path("production.env"), {})


def test_reference_stack_target() -> None:
    target = TargetConfig.for_reference_stack("http://127.0.0.1:5000/")
    assert target.supabase_url == "http://127.0.0.1:5000"
    assert target.service_role_key is not None and target.source == "reference stack"


def test_names_come_from_the_harness_variables_alone() -> None:
    names = names_from_mapping({"HARNESS_REGION_HEADER": " x-served-from ", "HARNESS_TABLE_MESSAGES": "chat_messages"})
    assert (names.region_header, names.messages, names.bucket) == ("x-served-from", "chat_messages", "attachments")
    assert names_from_mapping({}) == Names()
    with pytest.raises(ConfigError, match=r"HARNESS_STORAGE_BUCKET \(prod\.env\): "):
        names_from_mapping({"HARNESS_STORAGE_BUCKET": "no spaces"}, "prod.env")
