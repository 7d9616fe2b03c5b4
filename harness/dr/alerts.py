"""Alerts: one short line to SNS and/or Slack when a DR action ran, or a drill, a gate or a backup verify failed.

    Alert(what, where, figure, report_path, ok).text()
        "[harness] FAILED drill failover at ap-southeast-1: RTO 41.2 s > gate 30 s — report: reports/…/report.html"
        │
        ▼ redact(): JWTs, access keys, webhook URLs, URL passwords, key=/token=/secret= values, the sinks' own secrets
    publish(alert, sinks) ──► SNS  sns.publish(TopicArn, Subject, Message)      --sns-topic-arn / HARNESS_SNS_TOPIC_ARN
                          └─► Slack POST {"text": …} to the incoming webhook   --slack-webhook / HARNESS_SLACK_WEBHOOK
                          ──► AlertOutcome(delivered, failures)

publish never raises: an alert that cannot be delivered must not hide the result it reports. Each failed channel
is in the outcome and on stderr as one warning line, with a reason that never contains the webhook URL (it is a
credential: whoever holds it can post to the channel). SNS publishing is not a change of resources, so it needs no
--confirm-remote; it uses the credentials AwsSettings finds, in the topic's own region.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import botocore.exceptions
import httpx

from harness.dr import aws as aws_settings
from harness.dr.aws import AwsSettings
from harness.errors import ConfigError, HarnessError
from harness.model.target_config import Secret

ENV_SNS_TOPIC = "HARNESS_SNS_TOPIC_ARN"
ENV_SLACK_WEBHOOK = "HARNESS_SLACK_WEBHOOK"
SLACK_TIMEOUT_S = 5.0
SUBJECT_MAX = 100
"""SNS's limit for a Subject (ASCII, no line breaks)."""
TEXT_MAX = 600
"""An alert is one short line; a longer figure is cut."""

_SNS_ARN = re.compile(r"^arn:aws[a-z-]*:sns:(?P<region>[a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")

# Each pattern with its replacement; order matters (a URL's userinfo before the key=value rule sees "password=").
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S), "<private-key>"),
    (re.compile(r"https?://hooks\.slack(?:-gov)?\.com/\S*", re.I), "<slack-webhook>"),
    (re.compile(r"https?://[^\s/]*discord(?:app)?\.com/api/webhooks/\S*", re.I), "<webhook>"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){0,2}"), "<jwt>"),
    (re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{16}\b"), "<aws-access-key>"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]+"), "<slack-token>"),
    (re.compile(r"\bsb_secret_[A-Za-z0-9_-]+"), "<supabase-secret>"),
    (re.compile(r"\b(?:ghp|gho|ghs|ghu|github_pat)_[A-Za-z0-9_]{16,}"), "<github-token>"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@:]*:[^\s/@]*@"), r"\1***@"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@:]+@"), r"\1***@"),
    (
        re.compile(
            r"(?i)\b([a-z0-9_.-]*(?:key|token|secret|password|passwd|pwd|passphrase|signature|credential|auth)s?)"
            r"(\s*[=:]\s*)(?!\*\*\*)(\"[^\"]*\"|'[^']*'|[^\s&,;\"']+)"
        ),
        r"\1\2***",
    ),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without anything secret-looking, and without any of `secrets` (e.g. the configured webhook URL)."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "<secret>")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


@dataclass(frozen=True)
class Alert:
    """What happened, where, and the figure that decided it: "drill failover", "ap-southeast-1", "RTO 41.2 s > gate
    30 s". `ok` True for a DR action that went through (a failover announced), False for a failure."""

    what: str
    where: str
    figure: str
    report_path: str | Path | None = None
    ok: bool = False

    @property
    def status(self) -> str:
        return "OK" if self.ok else "FAILED"

    def text(self) -> str:
        """One line, redacted, at most TEXT_MAX characters (the figure is cut first: the report path is kept)."""
        # Each part is redacted before the cut, so a cut cannot leave half a token that no pattern knows.
        head = f"[harness] {self.status} {_clean(self.what)} at {_clean(self.where)}: "
        tail = f" — report: {_clean(str(self.report_path))}" if self.report_path else ""
        figure = _clean(self.figure)
        room = max(20, TEXT_MAX - len(head) - len(tail))
        if len(figure) > room:
            figure = figure[: room - 1] + "…"
        return redact(head + figure + tail)

    def subject(self) -> str:
        """SNS Subject: ASCII, one line, under 100 characters."""
        subject = f"[harness] {self.status} {_clean(self.what)} at {_clean(self.where)}"
        subject = subject.encode("ascii", "replace").decode("ascii")
        return subject if len(subject) < SUBJECT_MAX else subject[: SUBJECT_MAX - 2] + "~"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _clean(text: str) -> str:
    return redact(_one_line(text))


@dataclass(frozen=True)
class AlertSinks:
    """Where alerts go; neither set = alerts are off (publish does nothing)."""

    sns_topic_arn: str | None = None
    slack_webhook: Secret | None = None
    aws: AwsSettings | None = None
    """Clients for SNS; None = AwsSettings from the environment."""

    def __post_init__(self) -> None:
        if self.sns_topic_arn is not None and not _SNS_ARN.match(self.sns_topic_arn):
            raise ConfigError(
                f"--sns-topic-arn / {ENV_SNS_TOPIC} {self.sns_topic_arn!r} is not an SNS topic ARN; "
                "use arn:aws:sns:REGION:ACCOUNT:TOPIC"
            )
        if self.slack_webhook is not None and not re.match(r"^https?://[^\s/]+/\S*$", self.slack_webhook.reveal()):
            # The value is not echoed: a mistyped webhook is still most of a credential.
            raise ConfigError(
                f"--slack-webhook / {ENV_SLACK_WEBHOOK} is not an http(s) URL; use the incoming webhook's URL "
                "(https://hooks.slack.com/services/…)"
            )

    @property
    def enabled(self) -> bool:
        return self.sns_topic_arn is not None or self.slack_webhook is not None

    def describe(self) -> str:
        """Names the channels, never the webhook."""
        parts = [f"SNS {self.sns_topic_arn}"] if self.sns_topic_arn else []
        parts += ["Slack webhook"] if self.slack_webhook else []
        return ", ".join(parts) or "none"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("Alerts")
        group.add_argument(
            "--sns-topic-arn", metavar="ARN",
            help=f"publish alerts to this SNS topic (default: {ENV_SNS_TOPIC})",
        )  # fmt: skip
        group.add_argument(
            "--slack-webhook", metavar="URL",
            help=f"post alerts to this Slack incoming webhook (default: {ENV_SLACK_WEBHOOK}; prefer the env: "
            "a command line shows in ps)",
        )  # fmt: skip

    @classmethod
    def from_args(cls, args: argparse.Namespace, aws: AwsSettings | None = None) -> AlertSinks:
        """From --sns-topic-arn / --slack-webhook, else their env variables; `aws` defaults to the --aws-* args."""
        return cls.from_values(
            getattr(args, "sns_topic_arn", None),
            getattr(args, "slack_webhook", None),
            aws if aws is not None else aws_settings.from_args(args),
        )

    @classmethod
    def from_values(
        cls,
        sns_topic_arn: str | None,
        slack_webhook: str | None,
        aws: AwsSettings | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> AlertSinks:
        env = os.environ if environ is None else environ
        topic = (sns_topic_arn or env.get(ENV_SNS_TOPIC) or "").strip() or None
        webhook = (slack_webhook or env.get(ENV_SLACK_WEBHOOK) or "").strip() or None
        return cls(topic, Secret(webhook) if webhook else None, aws)


@dataclass(frozen=True)
class AlertOutcome:
    delivered: tuple[str, ...] = ()
    """Channels that took the alert: "sns", "slack"."""
    failures: Mapping[str, str] = field(default_factory=dict)
    """Channel → why it failed (redacted, no webhook URL)."""

    @property
    def ok(self) -> bool:
        return not self.failures


def publish(alert: Alert, sinks: AlertSinks, *, stderr: TextIO | None = None) -> AlertOutcome:
    """Send `alert` to every configured channel. Never raises; failures are returned and warned on stderr."""
    secrets = [sinks.slack_webhook.reveal()] if sinks.slack_webhook else []
    text = redact(alert.text(), secrets)
    delivered: list[str] = []
    failures: dict[str, str] = {}
    if sinks.sns_topic_arn:
        reason = _to_sns(sinks.sns_topic_arn, redact(alert.subject(), secrets), text, sinks.aws)
        _record("sns", reason, delivered, failures, secrets)
    if sinks.slack_webhook:
        _record("slack", _to_slack(sinks.slack_webhook, text), delivered, failures, secrets)
    out = sys.stderr if stderr is None else stderr
    for channel, reason in failures.items():
        print(f"harness: warning: alert not delivered via {channel}: {reason}", file=out, flush=True)
    return AlertOutcome(tuple(delivered), failures)


def _record(
    channel: str, reason: str | None, delivered: list[str], failures: dict[str, str], secrets: list[str]
) -> None:
    if reason is None:
        delivered.append(channel)
    else:
        failures[channel] = redact(reason, secrets)


def _to_sns(topic_arn: str, subject: str, message: str, aws: AwsSettings | None) -> str | None:
    """None when SNS took the message, else why not."""
    match = _SNS_ARN.match(topic_arn)
    region = match.group("region") if match else None
    try:
        client = (aws or AwsSettings.from_env()).client("sns", region=region)
        client.publish(TopicArn=topic_arn, Subject=subject, Message=message)
    except HarnessError as exc:  # no credentials, unknown profile
        return str(exc)
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        return f"SNS {error.get('Code', '?')}: {error.get('Message', '')}"
    except botocore.exceptions.BotoCoreError as exc:
        return f"SNS {type(exc).__name__}: {exc}"
    except Exception as exc:  # an alert must never take the run down with it
        return f"SNS {type(exc).__name__}: {exc}"
    return None


def _to_slack(webhook: Secret, text: str) -> str | None:
    """None when Slack answered 2xx, else why not. The reason never includes the URL (httpx errors may)."""
    try:
        reply = httpx.post(webhook.reveal(), json={"text": text}, timeout=SLACK_TIMEOUT_S)
    except httpx.TimeoutException:
        return f"Slack did not answer within {SLACK_TIMEOUT_S:g} s"
    except httpx.HTTPError as exc:
        return f"Slack {type(exc).__name__}: {_without_url(str(exc), webhook)}"
    except Exception as exc:  # an alert must never take the run down with it
        return f"Slack {type(exc).__name__}: {_without_url(str(exc), webhook)}"
    if reply.is_success:
        return None
    return f"Slack answered HTTP {reply.status_code}: {_one_line(reply.text)[:100]}"


def _without_url(message: str, webhook: Secret) -> str:
    return redact(message, [webhook.reveal()])
