"""A failover that moves DNS: the real stack is promoted and the Route53 failover records on moto are flipped."""

from __future__ import annotations

from pathlib import Path

import boto3

from harness.dr.aws import AwsSettings
from harness.dr.failover import failover
from harness.dr.route53 import Route53Records, Route53Switch
from harness.refstack.stack import ReferenceStack
from tests.conftest import MotoServer
from tests.dr.conftest import context_of


def test_failover_flips_the_route53_failover_records(
    stack: ReferenceStack, tmp_path: Path, moto_server: MotoServer
) -> None:
    r53 = boto3.client("route53", endpoint_url=moto_server.endpoint_url)
    zone = r53.create_hosted_zone(Name="example.test", CallerReference="drill")["HostedZone"]["Id"]
    changes = [
        {"Action": "CREATE", "ResourceRecordSet": {
            "Name": "api.example.test", "Type": "CNAME", "SetIdentifier": sid, "Failover": role, "TTL": 60,
            "ResourceRecords": [{"Value": value}]}}
        for sid, role, value in (("sg", "PRIMARY", "sg.example.test"), ("jp", "SECONDARY", "jp.example.test"))
    ]  # fmt: skip
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})
    ctx = context_of(stack, tmp_path / "state")
    records = Route53Records(zone, "api.example.test", {"ap-southeast-1": "sg", "ap-northeast-1": "jp"})
    ctx.switches = [*ctx.switches, Route53Switch(records, AwsSettings(endpoint_url=moto_server.endpoint_url))]
    outcome = failover(ctx)
    assert outcome.ok, outcome.as_dict()
    assert outcome.step_named("switch_route53").changed  # type: ignore[union-attr]
    sets = boto3.client("route53", endpoint_url=moto_server.endpoint_url).list_resource_record_sets(HostedZoneId=zone)
    roles = {s["SetIdentifier"]: s["Failover"] for s in sets["ResourceRecordSets"] if s.get("SetIdentifier")}
    assert roles == {"jp": "PRIMARY", "sg": "SECONDARY"}
    assert failover(ctx).step_named("switch_route53").changed is False  # type: ignore[union-attr]
