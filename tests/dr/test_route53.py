"""Route53Switch against moto's server: failover and weighted records as a deployment's Terraform makes them.

Every check reads the records back with a fresh boto3 client, so it sees what Route53 holds, not what the switch
thinks it wrote.
"""

from __future__ import annotations

import argparse
from typing import Any

import boto3
import pytest

from harness.dr.aws import AwsSettings
from harness.dr.route53 import Route53Records, Route53Switch, parse_sets, wait_insync
from harness.errors import ConfigError

SG, JP = "ap-southeast-1", "ap-northeast-1"
NAME = "api.example.test"


def route53(endpoint_url: str) -> Any:
    return boto3.client("route53", endpoint_url=endpoint_url, region_name="us-east-1")


def make_zone(endpoint_url: str, routing: str, *, extra_weighted: bool = False) -> tuple[str, str]:
    """A zone with `api.example.test` CNAME: sets "sg" and "jp"; returns (zone id, health check id)."""
    client = route53(endpoint_url)
    zone_id = client.create_hosted_zone(Name="example.test", CallerReference="t")["HostedZone"]["Id"]
    check = client.create_health_check(
        CallerReference="hc",
        HealthCheckConfig={"Type": "HTTPS", "FullyQualifiedDomainName": "sg.example.test", "ResourcePath": "/h"},
    )["HealthCheck"]["Id"]
    sets: list[dict[str, Any]] = []
    if routing == "failover":
        sets.append({"SetIdentifier": "sg", "Failover": "PRIMARY", "HealthCheckId": check, "target": "sg"})
        sets.append({"SetIdentifier": "jp", "Failover": "SECONDARY", "target": "jp"})
    else:
        sets.append({"SetIdentifier": "sg", "Weight": 70, "HealthCheckId": check, "target": "sg"})
        sets.append({"SetIdentifier": "jp", "Weight": 30, "target": "jp"})
        if extra_weighted:
            sets.append({"SetIdentifier": "eu", "Weight": 0, "target": "eu"})
    changes = []
    for spec in sets:
        target = spec.pop("target")
        rrset = {"Name": NAME, "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": f"{target}.lb.example.test"}]}
        changes.append({"Action": "CREATE", "ResourceRecordSet": {**rrset, **spec}})
    # A neighbour of the same name and another type, which the switch must leave alone.
    changes.append(
        {
            "Action": "CREATE",
            "ResourceRecordSet": {"Name": NAME, "Type": "TXT", "TTL": 300, "ResourceRecords": [{"Value": '"x"'}]},
        }
    )
    client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    return zone_id, check


def read_sets(endpoint_url: str, zone_id: str, rtype: str = "CNAME") -> dict[str, dict[str, Any]]:
    sets = route53(endpoint_url).list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {
        r["SetIdentifier"]: r for r in sets if r["Name"] == NAME + "." and r["Type"] == rtype and "SetIdentifier" in r
    }


def switch(
    endpoint_url: str, zone_id: str, routing: str = "failover", sets: dict[str, str] | None = None
) -> Route53Switch:
    records = Route53Records(zone_id, NAME, sets or {SG: "sg", JP: "jp"}, routing=routing)  # type: ignore[arg-type]
    return Route53Switch(records, AwsSettings(endpoint_url=endpoint_url), wait_s=5, poll_s=0.05)


def count_changes(sw: Route53Switch) -> list[str]:
    """Every ChangeResourceRecordSets the switch's own client sends (a botocore event hook, no stub)."""
    sent: list[str] = []
    client = sw._route53()
    client.meta.events.register(
        "before-call.route53.ChangeResourceRecordSets", lambda **kw: sent.append(kw["params"]["url_path"])
    )
    return sent


def test_failover_flip_makes_japan_primary_and_keeps_every_other_field(moto_server: Any) -> None:
    zone_id, check = make_zone(moto_server.endpoint_url, "failover")
    before = read_sets(moto_server.endpoint_url, zone_id)
    sw = switch(moto_server.endpoint_url, zone_id)
    assert sw.name == "route53"
    assert sw.active_region() == SG

    result = sw.switch_to(JP)

    assert (result.switch, result.region, result.changed) == ("route53", JP, True)
    assert "ap-northeast-1=PRIMARY (was SECONDARY)" in result.detail
    after = read_sets(moto_server.endpoint_url, zone_id)
    assert after["jp"]["Failover"] == "PRIMARY" and after["sg"]["Failover"] == "SECONDARY"
    for sid in ("sg", "jp"):
        assert {k: v for k, v in after[sid].items() if k != "Failover"} == {
            k: v for k, v in before[sid].items() if k != "Failover"
        }
    assert after["sg"]["HealthCheckId"] == check
    assert after["jp"]["ResourceRecords"] == [{"Value": "jp.lb.example.test"}]
    txt = [
        r
        for r in route53(moto_server.endpoint_url).list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        if r["Type"] == "TXT"
    ]
    assert txt[0]["ResourceRecords"] == [{"Value": '"x"'}]  # the neighbour is untouched
    assert switch(moto_server.endpoint_url, zone_id).active_region() == JP


def test_second_flip_is_a_no_op_without_a_change_call(moto_server: Any) -> None:
    zone_id, _ = make_zone(moto_server.endpoint_url, "failover")
    sw = switch(moto_server.endpoint_url, zone_id)
    sent = count_changes(sw)
    assert sw.switch_to(JP).changed
    assert len(sent) == 1

    again = sw.switch_to(JP)

    assert again.changed is False
    assert "already" in again.detail
    assert len(sent) == 1
    assert read_sets(moto_server.endpoint_url, zone_id)["jp"]["Failover"] == "PRIMARY"


def test_failback_flips_back(moto_server: Any) -> None:
    zone_id, _ = make_zone(moto_server.endpoint_url, "failover")
    sw = switch(moto_server.endpoint_url, zone_id)
    sw.switch_to(JP)
    assert sw.switch_to(SG).changed
    after = read_sets(moto_server.endpoint_url, zone_id)
    assert (after["sg"]["Failover"], after["jp"]["Failover"]) == ("PRIMARY", "SECONDARY")


def test_weighted_flip_gives_the_target_every_weight(moto_server: Any) -> None:
    zone_id, check = make_zone(moto_server.endpoint_url, "weighted", extra_weighted=True)
    sw = switch(moto_server.endpoint_url, zone_id, "weighted", {SG: "sg", JP: "jp", "eu-west-1": "eu"})
    assert sw.active_region() is None  # 70/30: split, cannot tell

    result = sw.switch_to(JP)

    assert result.changed
    after = read_sets(moto_server.endpoint_url, zone_id)
    assert {sid: r["Weight"] for sid, r in after.items()} == {"sg": 0, "jp": 100, "eu": 0}
    assert after["sg"]["HealthCheckId"] == check and after["sg"]["TTL"] == 60
    assert switch(moto_server.endpoint_url, zone_id, "weighted").active_region() == JP
    assert sw.switch_to(JP).changed is False


def test_dry_run_changes_nothing_and_says_what_it_would_do(moto_server: Any) -> None:
    zone_id, _ = make_zone(moto_server.endpoint_url, "failover")
    before = read_sets(moto_server.endpoint_url, zone_id)
    sw = switch(moto_server.endpoint_url, zone_id)
    sent = count_changes(sw)

    result = sw.switch_to(JP, dry_run=True)

    assert result.changed is False
    assert "would set" in result.detail and "ap-northeast-1=PRIMARY (was SECONDARY)" in result.detail
    assert sent == []
    assert read_sets(moto_server.endpoint_url, zone_id) == before


def test_missing_set_identifier_names_the_sets_that_exist(moto_server: Any) -> None:
    zone_id, _ = make_zone(moto_server.endpoint_url, "failover")
    sw = switch(moto_server.endpoint_url, zone_id, sets={SG: "sg", JP: "tokyo"})
    with pytest.raises(ConfigError, match=r"no set ap-northeast-1=tokyo: its sets are jp, sg"):
        sw.switch_to(JP)
    with pytest.raises(ConfigError, match="no set"):
        sw.preflight(dry_run=True)


def test_missing_record_and_missing_zone_are_config_errors(moto_server: Any) -> None:
    zone_id, _ = make_zone(moto_server.endpoint_url, "failover")
    records = Route53Records(zone_id, "www.example.test", {SG: "sg", JP: "jp"})
    sw = Route53Switch(records, AwsSettings(endpoint_url=moto_server.endpoint_url))
    with pytest.raises(ConfigError, match=r"no CNAME record of that name \(it has .*api\.example\.test\. CNAME"):
        sw.active_region()

    gone = Route53Switch(
        Route53Records("ZNOSUCHZONE", NAME, {SG: "sg", JP: "jp"}), AwsSettings(endpoint_url=moto_server.endpoint_url)
    )
    with pytest.raises(
        ConfigError, match=rf"'ZNOSUCHZONE' does not exist.*{zone_id.split('/')[-1]} \(example\.test\.\)"
    ):
        gone.switch_to(JP)


def test_weighted_routing_on_failover_records_is_refused(moto_server: Any) -> None:
    zone_id, _ = make_zone(moto_server.endpoint_url, "failover")
    with pytest.raises(ConfigError, match="no Weight: it is not a weighted record; pass --route53-routing failover"):
        switch(moto_server.endpoint_url, zone_id, "weighted").switch_to(JP)
    assert read_sets(moto_server.endpoint_url, zone_id)["sg"]["Failover"] == "PRIMARY"


def test_unknown_region_is_a_config_error(moto_server: Any) -> None:
    zone_id, _ = make_zone(moto_server.endpoint_url, "failover")
    with pytest.raises(ConfigError, match="no record set for region 'eu-west-1'"):
        switch(moto_server.endpoint_url, zone_id).switch_to("eu-west-1")


def test_missing_credentials_is_a_config_error(
    moto_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    zone_id, _ = make_zone(moto_server.endpoint_url, "failover")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigError, match="no AWS credentials"):
        switch(moto_server.endpoint_url, zone_id).switch_to(JP)


def test_cli_arguments_build_the_switch(moto_server: Any) -> None:
    zone_id, _ = make_zone(moto_server.endpoint_url, "failover")
    parser = argparse.ArgumentParser()
    Route53Switch.add_arguments(parser)
    aws = AwsSettings(endpoint_url=moto_server.endpoint_url)

    assert Route53Switch.from_args(parser.parse_args([]), aws) is None
    args = parser.parse_args(
        [
            "--route53-zone-id",
            zone_id,
            "--route53-record",
            NAME,
            "--route53-set",
            f"{SG}=sg",
            "--route53-set",
            f"{JP}=jp",
        ]
    )
    sw = Route53Switch.from_args(args, aws)
    assert sw is not None
    assert sw.records == Route53Records(zone_id, NAME, {SG: "sg", JP: "jp"}, "CNAME", "failover")
    assert sw.switch_to(JP).changed
    assert read_sets(moto_server.endpoint_url, zone_id)["jp"]["Failover"] == "PRIMARY"

    with pytest.raises(ConfigError, match="need --route53-zone-id"):
        Route53Switch.from_args(parser.parse_args(["--route53-record", NAME]), aws)
    with pytest.raises(ConfigError, match="needs --route53-record"):
        Route53Switch.from_args(parser.parse_args(["--route53-zone-id", zone_id]), aws)
    with pytest.raises(ConfigError, match="exactly two record sets"):
        Route53Switch.from_args(
            parser.parse_args(["--route53-zone-id", zone_id, "--route53-record", NAME, "--route53-set", f"{SG}=sg"]),
            aws,
        )


def test_set_arguments_are_parsed_strictly() -> None:
    assert parse_sets([" ap-southeast-1 = primary ", "ap-northeast-1=secondary"]) == {
        SG: "primary",
        JP: "secondary",
    }
    with pytest.raises(ConfigError, match="use REGION=SET_ID"):
        parse_sets(["ap-southeast-1"])
    with pytest.raises(ConfigError, match="given twice"):
        parse_sets([f"{SG}=a", f"{SG}=b"])
    with pytest.raises(ConfigError, match="same SetIdentifier"):
        Route53Records("Z", NAME, {SG: "x", JP: "x"})


class _PendingThenInsync:
    """get_change as Route53 answers while a change propagates (moto answers INSYNC at once)."""

    def __init__(self, pending: int) -> None:
        self.pending = pending
        self.calls = 0

    def get_change(self, Id: str) -> dict[str, Any]:  # boto3 names it Id
        self.calls += 1
        return {"ChangeInfo": {"Id": Id, "Status": "PENDING" if self.calls <= self.pending else "INSYNC"}}


def test_wait_insync_polls_pending_until_insync_and_gives_up_at_the_deadline() -> None:
    client = _PendingThenInsync(pending=2)
    assert wait_insync(client, "/change/C1", wait_s=5, poll_s=0.01) == "INSYNC"
    assert client.calls == 3

    stuck = _PendingThenInsync(pending=10**6)
    assert wait_insync(stuck, "/change/C2", wait_s=0.05, poll_s=0.01) == "PENDING"
    assert wait_insync(stuck, "/change/C3", wait_s=5, status="INSYNC") == "INSYNC"  # no poll when already in sync
