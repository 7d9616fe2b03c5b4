"""Alerts through real channels: moto's SNS delivering to an SQS queue, and a Slack-like HTTP receiver on loopback."""

from __future__ import annotations

import argparse
import io
import json
import socket
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from harness.dr.alerts import Alert, AlertSinks, publish, redact
from harness.dr.aws import AwsSettings
from harness.errors import ConfigError
from harness.model.target_config import Secret
from tests.conftest import SlackReceiver

REPORT = "reports/2026-12-05T07-00/report.html"
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJlLW5vdC1yZWFs"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"


def failed_drill() -> Alert:
    return Alert("drill failover", "ap-southeast-1", "RTO 41.2 s > gate 30 s", REPORT)


# --- the message ---------------------------------------------------------------------------------------------------


def test_text_is_one_short_line_with_what_where_figure_and_report() -> None:
    assert failed_drill().text() == (
        "[harness] FAILED drill failover at ap-southeast-1: RTO 41.2 s > gate 30 s — report: " + REPORT
    )
    done = Alert("failover", "ap-northeast-1", "RTO 12.0 s, RPO 0 rows\nprimary now jp", ok=True)
    assert done.text() == "[harness] OK failover at ap-northeast-1: RTO 12.0 s, RPO 0 rows primary now jp"
    long = Alert("gate", "sg", "x" * 5000, REPORT).text()
    assert len(long) <= 600 and long.endswith(REPORT) and "\n" not in long


def test_subject_is_ascii_and_under_100_characters() -> None:
    subject = Alert("backup verify " + "é" * 200, "s3://bucket/prefix", "restore failed").subject()
    assert len(subject) < 100
    subject.encode("ascii")
    assert subject.startswith("[harness] FAILED backup verify ")


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        (f"Authorization failed for {JWT} at edge", JWT),
        (f"token={JWT[:30]}", JWT[:30]),
        (f"key {ACCESS_KEY} refused", ACCESS_KEY),
        ("posted to https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX", "XXXXSECRETXXXX"),
        ("dsn postgresql://harness:hunter2pass@db.internal:5432/app down", "hunter2pass"),
        ("GET https://api.example.com/x?apikey=abc123def&region=sg 500", "abc123def"),
        ("GET /storage/v1/object/sign/a?token=sig-value-99 403", "sig-value-99"),
        ("secret=s3cr3t-value next", "s3cr3t-value"),
        ('password: "correct horse battery"', "correct horse"),
        ("service key sb_secret_abcdefghijklmnop used", "sb_secret_abcdefghijklmnop"),
        ("slack token xoxb-1234-5678-abcdefgh", "xoxb-1234"),
        ("Authorization: Bearer opaque.token-value-123", "opaque.token-value-123"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXk"),
    ],
)
def test_redact_removes_secret_looking_values(text: str, leaked: str) -> None:
    assert leaked not in redact(text)


def test_redact_keeps_ordinary_text_and_removes_given_secrets() -> None:
    plain = "[harness] FAILED drill failover at ap-southeast-1: RTO 41.2 s > gate 30 s — report: " + REPORT
    assert redact(plain) == plain
    assert redact("posted to http://127.0.0.1:8/hook/abc", ["http://127.0.0.1:8/hook/abc"]) == "posted to <secret>"


# --- SNS (moto, delivered into an SQS queue) ------------------------------------------------------------------------


@dataclass
class SnsTopic:
    arn: str
    queue_url: str
    sqs: Any

    def received(self) -> list[dict[str, Any]]:
        """SNS envelopes in the queue (bounded: a few short polls)."""
        envelopes: list[dict[str, Any]] = []
        for _ in range(3):
            answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            envelopes += [json.loads(m["Body"]) for m in answer.get("Messages", [])]
            if envelopes:
                break
        return envelopes


@pytest.fixture
def sns_topic(moto_server: Any) -> SnsTopic:
    kw = {"endpoint_url": moto_server.endpoint_url, "region_name": moto_server.region}
    sns, sqs = boto3.client("sns", **kw), boto3.client("sqs", **kw)
    arn = sns.create_topic(Name="harness-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    return SnsTopic(arn, queue_url, sqs)


def test_sns_delivers_the_alert(moto_server: Any, sns_topic: SnsTopic) -> None:
    sinks = AlertSinks(sns_topic.arn, None, AwsSettings(endpoint_url=moto_server.endpoint_url))
    stderr = io.StringIO()

    outcome = publish(failed_drill(), sinks, stderr=stderr)

    assert outcome.delivered == ("sns",) and outcome.ok
    assert stderr.getvalue() == ""
    [envelope] = sns_topic.received()
    assert envelope["TopicArn"] == sns_topic.arn
    assert envelope["Subject"] == "[harness] FAILED drill failover at ap-southeast-1"
    for part in ("drill failover", "ap-southeast-1", "RTO 41.2 s > gate 30 s", REPORT):
        assert part in envelope["Message"]


def test_sns_message_carries_no_secret(moto_server: Any, sns_topic: SnsTopic) -> None:
    alert = Alert("backup verify", f"s3://u:{ACCESS_KEY}@bucket", f"restore refused: {JWT}", REPORT)
    publish(alert, AlertSinks(sns_topic.arn, None, AwsSettings(endpoint_url=moto_server.endpoint_url)))
    [envelope] = sns_topic.received()
    assert JWT not in envelope["Message"] and ACCESS_KEY not in envelope["Message"]
    assert ACCESS_KEY not in envelope["Subject"]
    assert "restore refused: <jwt>" in envelope["Message"]


def test_unknown_sns_topic_is_a_failure_not_an_exception(moto_server: Any) -> None:
    arn = "arn:aws:sns:ap-southeast-1:123456789012:no-such-topic"
    stderr = io.StringIO()
    outcome = publish(
        failed_drill(), AlertSinks(arn, None, AwsSettings(endpoint_url=moto_server.endpoint_url)), stderr=stderr
    )
    assert outcome.delivered == () and "NotFound" in outcome.failures["sns"]
    assert stderr.getvalue().startswith("harness: warning: alert not delivered via sns: SNS NotFound")


# --- Slack (a real HTTP receiver on loopback) -----------------------------------------------------------------------


def test_slack_receives_the_alert_as_json(slack: SlackReceiver) -> None:
    outcome = publish(failed_drill(), AlertSinks(slack_webhook=Secret(slack.url)), stderr=io.StringIO())
    assert outcome.delivered == ("slack",) and outcome.ok
    assert slack.bodies == [{"text": failed_drill().text()}]


def test_slack_message_carries_no_jwt_service_key_or_webhook(slack: SlackReceiver) -> None:
    alert = Alert(
        "failover",
        "ap-northeast-1",
        f"promote refused with {JWT}; service key sb_secret_Zm9vYmFyYmF6cXV4; notified {slack.url}",
        REPORT,
    )
    publish(alert, AlertSinks(slack_webhook=Secret(slack.url)), stderr=io.StringIO())
    [body] = slack.bodies
    text = body["text"]
    for secret in (JWT, "sb_secret_Zm9vYmFyYmF6cXV4", slack.url, "xyzWebhookSecret42"):
        assert secret not in text
    assert text.startswith("[harness] FAILED failover at ap-northeast-1: promote refused with <jwt>")
    assert text.endswith("report: " + REPORT)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_webhook_is_reported_not_raised_and_not_echoed(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/services/T0/B0/unreachableSecret77"

    outcome = publish(failed_drill(), AlertSinks(slack_webhook=Secret(url)))

    assert outcome.delivered == () and not outcome.ok
    assert "ConnectError" in outcome.failures["slack"]
    err = capsys.readouterr().err
    assert err.startswith("harness: warning: alert not delivered via slack: Slack ConnectError")
    assert "unreachableSecret77" not in err and "unreachableSecret77" not in outcome.failures["slack"]
    assert "127.0.0.1" not in err


def test_slack_error_status_is_a_failure(slack: SlackReceiver) -> None:
    slack.status = 500
    outcome = publish(failed_drill(), AlertSinks(slack_webhook=Secret(slack.url)), stderr=io.StringIO())
    assert outcome.failures == {"slack": "Slack answered HTTP 500: invalid_payload"}


def test_one_channel_failing_does_not_stop_the_other(moto_server: Any, slack: SlackReceiver) -> None:
    sinks = AlertSinks(
        "arn:aws:sns:ap-southeast-1:123456789012:absent",
        Secret(slack.url),
        AwsSettings(endpoint_url=moto_server.endpoint_url),
    )
    outcome = publish(failed_drill(), sinks, stderr=io.StringIO())
    assert outcome.delivered == ("slack",) and set(outcome.failures) == {"sns"}
    assert len(slack.bodies) == 1


def test_no_credentials_for_sns_is_a_failure_not_an_exception(
    moto_server: Any, sns_topic: SnsTopic, no_credentials: None
) -> None:
    outcome = publish(
        failed_drill(),
        AlertSinks(sns_topic.arn, None, AwsSettings(endpoint_url=moto_server.endpoint_url)),
        stderr=io.StringIO(),
    )
    assert outcome.failures["sns"].startswith("no AWS credentials")


# --- configuration -------------------------------------------------------------------------------------------------


def test_arguments_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = "https://hooks.slack.com/services/T0/B0/envWebhookSecret"
    monkeypatch.setenv("HARNESS_SLACK_WEBHOOK", hook)
    monkeypatch.setenv("HARNESS_SNS_TOPIC_ARN", "arn:aws:sns:ap-southeast-1:123456789012:from-env")
    parser = argparse.ArgumentParser()
    AlertSinks.add_arguments(parser)
    assert "envWebhookSecret" not in parser.format_help()

    sinks = AlertSinks.from_args(parser.parse_args([]))
    assert sinks.sns_topic_arn == "arn:aws:sns:ap-southeast-1:123456789012:from-env"
    assert sinks.slack_webhook == Secret(hook)
    assert "envWebhookSecret" not in repr(sinks) and "envWebhookSecret" not in sinks.describe()

    given = AlertSinks.from_args(parser.parse_args(["--sns-topic-arn", "arn:aws:sns:us-east-1:123456789012:cli"]))
    assert given.sns_topic_arn == "arn:aws:sns:us-east-1:123456789012:cli"

    monkeypatch.delenv("HARNESS_SLACK_WEBHOOK")
    monkeypatch.delenv("HARNESS_SNS_TOPIC_ARN")
    off = AlertSinks.from_args(parser.parse_args([]))
    assert not off.enabled
    assert publish(failed_drill(), off) == publish(failed_drill(), AlertSinks())
    assert publish(failed_drill(), off).delivered == ()


def test_bad_values_are_config_errors_that_do_not_echo_the_webhook() -> None:
    with pytest.raises(ConfigError, match="is not an SNS topic ARN"):
        AlertSinks(sns_topic_arn="harness-alerts")
    with pytest.raises(ConfigError, match="is not an http\\(s\\) URL") as caught:
        AlertSinks(slack_webhook=Secret("hooks.slack.com/services/T0/B0/typoSecret"))
    assert "typoSecret" not in str(caught.value)
