"""AWS access for failover and backups: one place that builds boto3 clients and decides whether a change may go out.

    --aws-endpoint-url / AWS_ENDPOINT_URL   moto (tests, demos) or a VPC endpoint; unset = AWS itself
    --aws-profile / AWS_PROFILE             a named profile of ~/.aws (credentials otherwise from the usual chain)
    --aws-region / AWS_REGION, AWS_DEFAULT_REGION
    AWS_MAX_ATTEMPTS                        attempts per call, the first included (default 6, standard mode)

Changes (a DNS flip, an upload, a delete) against real AWS need an explicit `--aws-profile` or
`--aws-endpoint-url` and `--confirm-remote`: a stray shell with production credentials must not flip production
DNS (a run's own reports, `--results-url`, are the exception: harness/artifacts/s3.py). Against a loopback endpoint
(moto) nothing needs confirming. Missing credentials are a ConfigError (exit 2) that says where boto3 looks; a
credential value is never printed.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from harness.errors import ConfigError
from harness.model.hosts import is_loopback_url

DEFAULT_REGION = "ap-southeast-1"
DEFAULT_MAX_ATTEMPTS = 6
"""The first try and 5 retries (standard retry mode, exponential backoff)."""
ENV_MAX_ATTEMPTS = "AWS_MAX_ATTEMPTS"
"""The AWS CLI's and SDKs' own variable: attempts per call, the first included."""


def _client_config(environ: Mapping[str, str] | None = None) -> botocore.config.Config:
    env = os.environ if environ is None else environ
    text = (env.get(ENV_MAX_ATTEMPTS) or "").strip()
    attempts = DEFAULT_MAX_ATTEMPTS
    if text:
        attempts = int(text) if text.isdigit() else 0
        if not 1 <= attempts <= 20:
            raise ConfigError(
                f"{ENV_MAX_ATTEMPTS}: {text!r} is not a number of attempts per AWS call from 1 to 20 (e.g. 3)"
            )
    return botocore.config.Config(
        retries={"total_max_attempts": attempts, "mode": "standard"}, connect_timeout=5, read_timeout=30
    )


@dataclass(frozen=True)
class AwsSettings:
    endpoint_url: str | None = None
    """moto or a VPC endpoint; None = AWS itself."""
    profile: str | None = None
    region: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> AwsSettings:
        env = os.environ if environ is None else environ
        return cls(
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            profile=env.get("AWS_PROFILE") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        )

    @property
    def is_local(self) -> bool:
        """True when every call goes to a loopback endpoint (moto): nothing real can change."""
        return self.endpoint_url is not None and is_loopback_url(self.endpoint_url)

    def describe(self) -> str:
        where = self.endpoint_url or "AWS"
        return f"{where} (profile {self.profile})" if self.profile else where

    def session(self) -> boto3.Session:
        try:
            return boto3.Session(profile_name=self.profile, region_name=self.region or DEFAULT_REGION)
        except botocore.exceptions.ProfileNotFound:
            raise ConfigError(
                f"AWS profile {self.profile!r} is not in ~/.aws/config or ~/.aws/credentials; "
                "pass an existing --aws-profile or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            ) from None

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client for `service` (e.g. "s3", "route53", "sns"), credentials checked first."""
        session = self.session()
        require_credentials(session, self)
        return session.client(
            service, region_name=region or self.region or DEFAULT_REGION, endpoint_url=self.endpoint_url,
            config=_client_config(),
        )  # fmt: skip


def require_credentials(session: boto3.Session, settings: AwsSettings) -> None:
    try:
        credentials = session.get_credentials()
    except botocore.exceptions.PartialCredentialsError as exc:  # e.g. a key id without its secret
        kwargs = getattr(exc, "kwargs", {})
        raise ConfigError(
            f"incomplete AWS credentials for {settings.describe()}: {kwargs.get('cred_var', 'a value')} is missing "
            f"(source: {kwargs.get('provider', '?')}); set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or pass --aws-profile NAME"
        ) from None
    except botocore.exceptions.CredentialRetrievalError as exc:
        # The provider's own message may quote a credential_process's output: name the provider only.
        raise ConfigError(
            f"AWS credentials for {settings.describe()} could not be read from "
            f"{getattr(exc, 'kwargs', {}).get('provider', 'their source')}; check that profile or pass another"
        ) from None
    if credentials is None:
        raise ConfigError(
            f"no AWS credentials for {settings.describe()}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or pass --aws-profile NAME (a profile in ~/.aws), or run where an instance/IRSA role provides them"
        )


def check_changes_allowed(settings: AwsSettings, *, confirm_remote: bool, what: str) -> None:
    """ConfigError unless `what` (e.g. "flip Route53 records") may change real resources."""
    if settings.is_local:
        return
    if settings.endpoint_url is None and settings.profile is None:
        raise ConfigError(
            f"refusing to {what} on AWS with whatever credentials the environment holds: name them with "
            "--aws-profile NAME (or --aws-endpoint-url URL for moto), and add --confirm-remote"
        )
    if not confirm_remote:
        raise ConfigError(f"{what} changes real resources at {settings.describe()}: add --confirm-remote to proceed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("AWS (Route53, S3, SNS)")
    group.add_argument(
        "--aws-endpoint-url", metavar="URL",
        help="AWS endpoint, e.g. moto's http://127.0.0.1:5000 (default: AWS_ENDPOINT_URL, else AWS)",
    )  # fmt: skip
    group.add_argument("--aws-profile", metavar="NAME", help="profile in ~/.aws (default: AWS_PROFILE)")
    group.add_argument(
        "--aws-region", metavar="REGION",
        help=f"region of the clients (default: AWS_REGION, AWS_DEFAULT_REGION, else {DEFAULT_REGION})",
    )  # fmt: skip


def from_args(args: argparse.Namespace) -> AwsSettings:
    env = AwsSettings.from_env()
    return AwsSettings(
        endpoint_url=getattr(args, "aws_endpoint_url", None) or env.endpoint_url,
        profile=getattr(args, "aws_profile", None) or env.profile,
        region=getattr(args, "aws_region", None) or env.region,
    )
