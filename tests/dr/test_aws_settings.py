"""AwsSettings: the real-AWS guard and the credential errors (no AWS is ever reached: the guard acts first)."""

from __future__ import annotations

import pytest

from harness.dr.aws import AwsSettings, check_changes_allowed
from harness.errors import ConfigError

SECRET = "wJalrXUtnFEMI-not-a-real-secret-K7MDENG"


def test_changes_on_aws_with_unnamed_credentials_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"refusing to flip Route53 records on AWS.*--aws-profile NAME"):
        check_changes_allowed(AwsSettings(), confirm_remote=True, what="flip Route53 records")


def test_changes_on_aws_need_confirm_remote() -> None:
    named = AwsSettings(profile="prod")
    with pytest.raises(ConfigError, match="add --confirm-remote"):
        check_changes_allowed(named, confirm_remote=False, what="flip Route53 records")
    check_changes_allowed(named, confirm_remote=True, what="flip Route53 records")
    remote_endpoint = AwsSettings(endpoint_url="https://route53.vpce.example.com")
    with pytest.raises(ConfigError, match="add --confirm-remote"):
        check_changes_allowed(remote_endpoint, confirm_remote=False, what="upload")


def test_a_loopback_endpoint_needs_no_confirmation() -> None:
    for url in ("http://127.0.0.1:5000", "http://localhost:5000", "http://[::1]:5000"):
        assert AwsSettings(endpoint_url=url).is_local
        check_changes_allowed(AwsSettings(endpoint_url=url), confirm_remote=False, what="flip Route53 records")


def test_a_name_under_localhost_is_not_a_local_endpoint() -> None:
    # Only literal loopback addresses and `localhost` are local (harness/model/hosts.py): a resolver decides the rest.
    with pytest.raises(ConfigError, match="add --confirm-remote"):
        check_changes_allowed(AwsSettings(endpoint_url="http://s3.localhost:5000"), confirm_remote=False, what="upload")


@pytest.mark.usefixtures("no_credentials")
def test_missing_credentials_are_a_config_error_without_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    # A secret without its key id: boto3 finds no credentials; the message must not quote what it did find.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    with pytest.raises(ConfigError, match=r"no AWS credentials for http://127.0.0.1:9") as caught:
        AwsSettings(endpoint_url="http://127.0.0.1:9").client("route53")
    assert SECRET not in str(caught.value)
    assert "AWS_ACCESS_KEY_ID" in str(caught.value)


@pytest.mark.usefixtures("no_credentials")
def test_partial_credentials_are_a_config_error_without_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAABCDEFGHIJKLMNOP")
    with pytest.raises(ConfigError, match=r"incomplete AWS credentials.*AWS_SECRET_ACCESS_KEY is missing") as caught:
        AwsSettings(endpoint_url="http://127.0.0.1:9").client("s3")
    assert "AKIAABCDEFGHIJKLMNOP" not in str(caught.value)


@pytest.mark.usefixtures("no_credentials")
def test_unknown_profile_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"AWS profile 'nosuch' is not in ~/.aws"):
        AwsSettings(profile="nosuch").client("sns")


def test_aws_max_attempts_is_honoured_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    endpoint = AwsSettings(endpoint_url="http://127.0.0.1:9")
    assert endpoint.client("s3").meta.config.retries["total_max_attempts"] == 6  # the first try and 5 retries
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    assert endpoint.client("s3").meta.config.retries["total_max_attempts"] == 2
    for bad in ("0", "x", "21"):
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", bad)
        with pytest.raises(ConfigError, match=f"AWS_MAX_ATTEMPTS: '{bad}' is not a number of attempts"):
            endpoint.client("s3")
