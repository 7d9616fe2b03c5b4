"""The Route53 traffic switch: move a record's traffic to one region, as the deployment's Terraform set DNS up.

    list_resource_record_sets(zone, name, type)      every set of the record (paginated), keyed by SetIdentifier
        │   failover:  target ─► PRIMARY, the others ─► SECONDARY
        │   weighted:  target ─► the sum of the weights (100 when all are 0), the others ─► 0
        ▼
    UPSERT the sets that differ, each a copy of what Route53 holds (TTL, ResourceRecords or AliasTarget,
    HealthCheckId kept) with only Failover or Weight changed, in one change batch (applied atomically)
        ▼
    get_change until INSYNC, at most wait_s (the change is accepted either way; the detail says which)

Idempotent: when the target already takes the traffic no change batch is sent (`changed` False). A dry run reads
the records and says what it would change. The regions are the harness's (e.g. ap-southeast-1); `--route53-set
REGION=SET_ID` maps each one to the SetIdentifier the Terraform gave its record.

A change against AWS itself goes through `check_changes_allowed` (aws.py): a named profile or endpoint and
`--confirm-remote`. `preflight()` checks all of that, and that the zone and every set exist, before a failover
promotes anything: a DNS flip that fails after the database moved leaves users on the old region.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

import botocore.exceptions

from harness.dr.aws import AwsSettings, check_changes_allowed
from harness.dr.switch import SwitchResult
from harness.errors import ConfigError, TargetUnreachable

Routing = Literal["failover", "weighted"]
ROUTINGS: tuple[Routing, ...] = get_args(Routing)

WAIT_S = 120.0
"""How long switch_to waits for INSYNC (Route53 usually needs 30-60 s)."""
POLL_S = 2.0
MAX_WEIGHT = 255
"""Route53's largest weight."""
_MAX_PAGES = 100
"""Listing bound: 100 pages of 300 sets is far beyond any one record."""


def normalise_name(name: str) -> str:
    """The name as Route53 lists it: lower case, trailing dot, `*` escaped."""
    name = name.strip().lower().replace("*", "\\052")
    return name if name.endswith(".") else name + "."


def _zone_id(zone_id: str) -> str:
    return zone_id.strip().removeprefix("/hostedzone/")


@dataclass(frozen=True)
class Route53Records:
    """One DNS name with a record set per region, e.g. api.example.com CNAME, sets "sg" and "jp"."""

    zone_id: str
    name: str
    sets: Mapping[str, str]
    """Region → SetIdentifier of its record set."""
    record_type: str = "CNAME"
    routing: Routing = "failover"

    def __post_init__(self) -> None:
        if not self.sets:
            raise ConfigError("Route53 switch: no record set given; add --route53-set REGION=SET_ID per region")
        if self.routing not in ROUTINGS:
            raise ConfigError(f"--route53-routing {self.routing!r}: use one of {', '.join(ROUTINGS)}")
        if self.routing == "failover" and len(self.sets) != 2:
            raise ConfigError(
                f"failover routing has exactly two record sets (PRIMARY and SECONDARY), got {len(self.sets)}: "
                "pass --route53-set twice, or --route53-routing weighted"
            )
        ids = list(self.sets.values())
        if len(set(ids)) != len(ids):
            raise ConfigError(f"--route53-set: two regions name the same SetIdentifier ({', '.join(ids)})")

    @property
    def fqdn(self) -> str:
        return normalise_name(self.name)

    def region_of(self, set_id: str) -> str | None:
        return next((region for region, sid in self.sets.items() if sid == set_id), None)


@dataclass
class Route53Switch:
    """TrafficSwitch over Route53 failover or weighted records (see the module docstring)."""

    records: Route53Records
    aws: AwsSettings
    wait_s: float = WAIT_S
    confirm_remote: bool = False
    """--confirm-remote: needed for a change at AWS itself (not against moto)."""
    poll_s: float = POLL_S
    name: str = field(default="route53", init=False)
    _client: Any = field(default=None, init=False, repr=False)

    # --- TrafficSwitch ---------------------------------------------------------------------------------------

    def active_region(self) -> str | None:
        """Failover: the region whose set is PRIMARY. Weighted: the only region with a non-zero weight (None when
        traffic is split or every weight is 0)."""
        current = self._read()
        if self.records.routing == "failover":
            primaries = [sid for sid, rrset in current.items() if rrset.get("Failover") == "PRIMARY"]
        else:
            primaries = [sid for sid, rrset in current.items() if int(rrset.get("Weight", 0)) > 0]
        return self.records.region_of(primaries[0]) if len(primaries) == 1 else None

    def switch_to(self, region: str, *, dry_run: bool = False) -> SwitchResult:
        if region not in self.records.sets:
            raise ConfigError(
                f"Route53 switch: no record set for region {region!r}; known: "
                f"{', '.join(sorted(self.records.sets))} (add --route53-set {region}=SET_ID)"
            )
        current = self._read()
        wanted = _target_state(self.records, current, self.records.sets[region])
        changes = [rrset for sid, rrset in wanted.items() if rrset != current[sid]]
        what = _describe(self.records, current, wanted)
        if not changes:
            return SwitchResult(self.name, region, False, f"{self._label()}: already {what}")
        if dry_run:
            return SwitchResult(self.name, region, False, f"{self._label()}: would set {what} (dry run)")
        check_changes_allowed(self.aws, confirm_remote=self.confirm_remote, what="flip Route53 records")
        batch = {
            "Comment": f"harness: traffic to {region}",
            "Changes": [{"Action": "UPSERT", "ResourceRecordSet": rrset} for rrset in changes],
        }
        answer = self._call(
            "change_resource_record_sets", HostedZoneId=_zone_id(self.records.zone_id), ChangeBatch=batch
        )
        change_id = answer["ChangeInfo"]["Id"]
        status = wait_insync(self._route53(), change_id, self.wait_s, self.poll_s, answer["ChangeInfo"]["Status"])
        tail = "" if status == "INSYNC" else f"; change {change_id} still {status} after {self.wait_s:g} s"
        return SwitchResult(self.name, region, True, f"{self._label()}: set {what}{tail}")

    # --- checks before a failover -----------------------------------------------------------------------------

    def preflight(self, *, dry_run: bool = False) -> None:
        """ConfigError unless switch_to can act: credentials, the zone and every set exist, changes allowed."""
        self._read()
        if not dry_run:
            check_changes_allowed(self.aws, confirm_remote=self.confirm_remote, what="flip Route53 records")

    # --- CLI ---------------------------------------------------------------------------------------------------

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("Route53 traffic switch")
        group.add_argument("--route53-zone-id", metavar="ZONE", help="hosted zone id (enables the Route53 switch)")
        group.add_argument("--route53-record", metavar="NAME", help="the record's name, e.g. api.example.com")
        group.add_argument("--route53-type", metavar="TYPE", default="CNAME", help="record type (default CNAME)")
        group.add_argument(
            "--route53-set", metavar="REGION=SET_ID", action="append", default=[],
            help="a region and the SetIdentifier of its record set; once per region",
        )  # fmt: skip
        group.add_argument(
            "--route53-routing", choices=ROUTINGS, default="failover",
            help="how the Terraform routes the record: failover (PRIMARY/SECONDARY) or weighted (default failover)",
        )  # fmt: skip

    @classmethod
    def from_args(cls, args: argparse.Namespace, aws: AwsSettings) -> Route53Switch | None:
        """The switch the arguments describe; None without --route53-zone-id."""
        zone = getattr(args, "route53_zone_id", None)
        if not zone:
            if getattr(args, "route53_record", None) or getattr(args, "route53_set", None):
                raise ConfigError("--route53-record and --route53-set need --route53-zone-id ZONE (the hosted zone)")
            return None
        name = getattr(args, "route53_record", None)
        if not name:
            raise ConfigError("--route53-zone-id needs --route53-record NAME (the record to flip)")
        records = Route53Records(
            zone_id=zone,
            name=name,
            sets=parse_sets(getattr(args, "route53_set", None) or []),
            record_type=(getattr(args, "route53_type", None) or "CNAME").upper(),
            routing=cast(Routing, getattr(args, "route53_routing", None) or "failover"),
        )
        return cls(records, aws, confirm_remote=bool(getattr(args, "confirm_remote", False)))

    # --- Route53 calls -----------------------------------------------------------------------------------------

    def _label(self) -> str:
        return f"{self.records.fqdn} {self.records.record_type} ({self.records.routing})"

    def _route53(self) -> Any:
        if self._client is None:
            self._client = self.aws.client("route53")
        return self._client

    def _call(self, operation: str, **params: Any) -> Any:
        try:
            return getattr(self._route53(), operation)(**params)
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "?"), error.get("Message", "")
            if code == "NoSuchHostedZone":
                raise ConfigError(self._no_zone_message()) from None
            if code in ("AccessDenied", "AccessDeniedException", "InvalidChangeBatch", "InvalidInput"):
                raise ConfigError(f"Route53 {operation} at {self.aws.describe()}: {code}: {message}") from None
            raise TargetUnreachable(f"Route53 {operation} at {self.aws.describe()} failed: {code}: {message}") from None
        except (botocore.exceptions.NoCredentialsError, botocore.exceptions.CredentialRetrievalError):
            # Credentials resolved lazily (an assumed role) can fail only at the first call.
            raise ConfigError(
                f"no usable AWS credentials for Route53 at {self.aws.describe()}: pass --aws-profile NAME or set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise TargetUnreachable(f"Route53 {operation} at {self.aws.describe()} failed: {exc}") from None

    def _no_zone_message(self) -> str:
        try:
            zones = self._route53().list_hosted_zones(MaxItems="20").get("HostedZones", [])
            known = ", ".join(f"{_zone_id(z['Id'])} ({z['Name']})" for z in zones) or "none"
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            known = "(could not list them)"
        return (
            f"Route53 hosted zone {self.records.zone_id!r} does not exist at {self.aws.describe()}; "
            f"zones there: {known}. Pass one with --route53-zone-id"
        )

    def _read(self) -> dict[str, dict[str, Any]]:
        """SetIdentifier → record set, for the sets this switch knows; ConfigError when one is missing."""
        found = self._list_record()
        missing = [f"{region}={sid}" for region, sid in self.records.sets.items() if sid not in found]
        if missing:
            if found:
                exists = f"its sets are {', '.join(sorted(found))}"
            else:
                exists = f"the zone has no {self.records.record_type} record of that name ({self._names_hint()})"
            raise ConfigError(
                f"Route53 record {self.records.fqdn} {self.records.record_type} in zone {self.records.zone_id} "
                f"has no set {', '.join(missing)}: {exists}; fix --route53-set REGION=SET_ID"
            )
        current = {sid: found[sid] for sid in self.records.sets.values()}
        for sid, rrset in current.items():
            key = "Failover" if self.records.routing == "failover" else "Weight"
            if key not in rrset:
                other = "weighted" if self.records.routing == "failover" else "failover"
                raise ConfigError(
                    f"Route53 record {self.records.fqdn} set {sid} has no {key}: it is not a {self.records.routing} "
                    f"record; pass --route53-routing {other} if the Terraform made it {other}"
                )
        return current

    def _list_record(self) -> dict[str, dict[str, Any]]:
        """Every set of name+type, by SetIdentifier (paginated: a record with many sets spans pages)."""
        fqdn, rtype = self.records.fqdn, self.records.record_type
        params: dict[str, Any] = {
            "HostedZoneId": _zone_id(self.records.zone_id),
            "StartRecordName": fqdn,
            "StartRecordType": rtype,
        }
        found: dict[str, dict[str, Any]] = {}
        for _ in range(_MAX_PAGES):
            page = self._call("list_resource_record_sets", **params)
            for rrset in page.get("ResourceRecordSets", []):
                if normalise_name(rrset["Name"]) != fqdn or rrset["Type"] != rtype:
                    return found  # listed in order: past our record
                if "SetIdentifier" in rrset:
                    found[rrset["SetIdentifier"]] = rrset
            if not page.get("IsTruncated"):
                return found
            params.update(StartRecordName=page["NextRecordName"], StartRecordType=page["NextRecordType"])
            if "NextRecordIdentifier" in page:
                params["StartRecordIdentifier"] = page["NextRecordIdentifier"]
            else:
                params.pop("StartRecordIdentifier", None)
        raise TargetUnreachable(f"Route53 listed more than {_MAX_PAGES} pages for {fqdn} {rtype}; giving up")

    def _names_hint(self) -> str:
        """A few record names of the zone, for an error message."""
        try:
            page = self._route53().list_resource_record_sets(HostedZoneId=_zone_id(self.records.zone_id), MaxItems="50")
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            return "could not list its records"
        names = sorted({f"{r['Name']} {r['Type']}" for r in page.get("ResourceRecordSets", [])})
        more = ", …" if len(names) > 10 or page.get("IsTruncated") else ""
        return "it has " + (", ".join(names[:10]) + more if names else "no records")


def _target_state(records: Route53Records, current: Mapping[str, dict[str, Any]], target: str) -> dict[str, Any]:
    """Each set as it must be for traffic to go to `target`: a copy with only Failover or Weight changed."""
    wanted: dict[str, Any] = {}
    if records.routing == "failover":
        for sid, rrset in current.items():
            wanted[sid] = {**rrset, "Failover": "PRIMARY" if sid == target else "SECONDARY"}
    else:
        total = sum(int(rrset.get("Weight", 0)) for rrset in current.values())
        weight = min(total, MAX_WEIGHT) if total > 0 else 100
        for sid, rrset in current.items():
            wanted[sid] = {**rrset, "Weight": weight if sid == target else 0}
    return wanted


def _describe(records: Route53Records, current: Mapping[str, Any], wanted: Mapping[str, Any]) -> str:
    """`sg=SECONDARY (was PRIMARY), jp=PRIMARY (was SECONDARY)`: the target state, and what it changes."""
    key = "Failover" if records.routing == "failover" else "Weight"
    parts = []
    for region, sid in records.sets.items():
        before, after = current[sid].get(key), wanted[sid].get(key)
        parts.append(f"{region}={after}" + (f" (was {before})" if before != after else ""))
    return ", ".join(parts)


def wait_insync(client: Any, change_id: str, wait_s: float, poll_s: float = POLL_S, status: str = "PENDING") -> str:
    """Poll get_change until INSYNC or wait_s passed; the last status seen."""
    deadline = time.monotonic() + wait_s
    while status != "INSYNC" and time.monotonic() < deadline:
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
        try:
            status = client.get_change(Id=change_id)["ChangeInfo"]["Status"]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            continue  # the change went in; a failed status read only means we know less
    return status


def parse_sets(values: list[str]) -> dict[str, str]:
    """["ap-southeast-1=sg", "ap-northeast-1=jp"] → {"ap-southeast-1": "sg", "ap-northeast-1": "jp"}."""
    sets: dict[str, str] = {}
    for value in values:
        region, sep, set_id = value.partition("=")
        region, set_id = region.strip(), set_id.strip()
        if not sep or not region or not set_id:
            raise ConfigError(f"--route53-set {value!r}: use REGION=SET_ID, e.g. ap-southeast-1=primary")
        if region in sets:
            raise ConfigError(f"--route53-set: region {region!r} given twice")
        sets[region] = set_id
    return sets
