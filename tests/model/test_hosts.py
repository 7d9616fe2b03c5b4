"""What counts as loopback (only literal loopback addresses and `localhost`) and the allow-list patterns: the one
rule (harness/model/hosts.py) the target, the DR commands, the AWS endpoint check and the hop fetch share."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.model import keys
from harness.model.hosts import allowed, is_loopback, is_loopback_url, matches, url_host
from harness.model.target_config import load_target, target_from_mapping

LOOPBACK = ["localhost", "LocalHost", "127.0.0.1", "127.8.9.10", "127.255.255.254", "::1", "[::1]"]
NOT_LOOPBACK = [
    "prod.localhost",  # a name: the resolver decides where it goes
    "localhost.",
    "localhost.example.com",
    "0.0.0.0",
    "::ffff:127.0.0.1",
    "::",
    "127.1",  # not a literal address ipaddress accepts; a resolver might take it for anything
    "10.0.0.1",
    "128.0.0.1",
    "",
]


@pytest.mark.parametrize("host", LOOPBACK)
def test_literal_loopback_addresses_and_localhost_are_loopback(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", NOT_LOOPBACK)
def test_names_that_need_a_resolver_and_other_addresses_are_not(host: str) -> None:
    assert not is_loopback(host)


def test_url_hosts() -> None:
    assert url_host("http://[::1]:8000/x") == "::1" and is_loopback_url("http://[::1]:8000")
    assert url_host("wss://LK.Example.com") == "lk.example.com"
    assert url_host("http://[bad") == "" and not is_loopback_url("not a url")


def test_allow_list_patterns() -> None:
    assert matches("staging.example.com", "staging.example.com")
    assert matches("a.b.example.com", "*.example.com") and not matches("example.com", "*.example.com")
    assert not matches("evilexample.com", "*.example.com")
    assert allowed("127.0.0.1", []) and allowed("x.example.com", ["*.example.com"])
    assert not allowed("prod.localhost", ["*.example.com"]) and not allowed("", ["*"])


def test_a_dot_localhost_target_is_remote_and_gets_no_demo_keys() -> None:
    target = target_from_mapping({"SUPABASE_URL": "http://prod.localhost:54321", "SUPABASE_ANON_KEY": keys.ANON_KEY})
    assert not target.is_loopback()
    with pytest.raises(ConfigError, match=r"SUPABASE_URL: prod\.localhost is not a loopback address"):
        target.check_allowed()
    with pytest.raises(ConfigError, match="SUPABASE_ANON_KEY is not set"):
        load_target(None, environ={}, supabase_url="http://prod.localhost:54321")
