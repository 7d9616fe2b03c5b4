"""The routing decision as a Lambda@Edge **origin-request** handler (Python runtime).

Deploy this file and `routing.py` flat in one zip with an `edge_config.json` beside them (Lambda@Edge has no
environment variables, so configuration ships in the package); see docs/edge.md.

Why origin-request: CloudFront adds `CloudFront-Viewer-Country` after the viewer-request event, so only
origin-facing functions see CloudFront's value (docs/network-calibration.md §5). For websockets the origin is
chosen once, at the upgrade.

Health: a Lambda@Edge function cannot probe origins per request. It routes on country (plus an optional static
`health` map in the config, for a planned failover by redeploying). Unplanned failures are CloudFront's job: put
the behaviour on an origin group (primary = Singapore's origin, secondary = Japan's). On a failover CloudFront
invokes this handler a second time with the *secondary* origin in the event; the handler then sends the request
to the region it did not choose the first time, so CN viewers fail over to Singapore and everyone else to Japan.
CloudFront fails over only GET, HEAD and OPTIONS requests.

    event.Records[0].cf.request ──► cloudfront-viewer-country ──► choose_origin ──► origin.custom.domainName
                                                                                  + headers.host rewritten
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    from .routing import RoutingPolicy, choose_origin
except ImportError:  # deployed flat in a Lambda@Edge zip, next to routing.py
    from routing import RoutingPolicy, choose_origin  # type: ignore[no-redef]

try:
    from harness.errors import ConfigError
except ImportError:  # the harness package is not in the Lambda@Edge zip

    class ConfigError(ValueError):  # type: ignore[no-redef]
        """A configuration value is wrong."""


CONFIG_FILE = "edge_config.json"
"""Read from the handler's own directory on the first invocation (cold start)."""

VIEWER_COUNTRY_HEADER = "cloudfront-viewer-country"

Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class LambdaConfig:
    """`origins` maps region → origin domain name (no scheme), e.g. {"ap-southeast-1": "abcd.supabase.co"}."""

    origins: Mapping[str, str]
    policy: RoutingPolicy = field(default_factory=RoutingPolicy)
    health: Mapping[str, bool] = field(default_factory=dict)
    """Static health, for a planned failover by redeploying; a region missing here counts as healthy."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str = CONFIG_FILE) -> LambdaConfig:
        origins = raw.get("origins")
        if not isinstance(origins, dict) or not all(isinstance(v, str) and v for v in origins.values()):
            raise ConfigError(
                f"{source}: origins: {origins!r} is not a map of region to domain name "
                f'(e.g. {{"ap-southeast-1": "abcd.supabase.co", "ap-northeast-1": "efgh.supabase.co"}})'
            )
        pol = dict(raw.get("policy", {}))
        known = set(RoutingPolicy.__dataclass_fields__)
        unknown = sorted(set(pol) - known)
        if unknown:
            raise ConfigError(f"{source}: policy: unknown field(s) {unknown}; valid fields: {sorted(known)}")
        if "secondary_countries" in pol:
            pol["secondary_countries"] = frozenset(str(c).upper() for c in pol["secondary_countries"])
        policy = RoutingPolicy(**pol)
        for region in (policy.primary_region, policy.secondary_region):
            if region not in origins:
                raise ConfigError(f"{source}: origins: no domain for region {region!r}; have {sorted(origins)}")
        health = raw.get("health", {})
        if not isinstance(health, dict) or not all(isinstance(v, bool) for v in health.values()):
            raise ConfigError(f"{source}: health: {health!r} is not a map of region to true/false")
        return cls(origins=dict(origins), policy=policy, health=dict(health))


def load_config(path: Path) -> LambdaConfig:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing; ship {CONFIG_FILE} next to lambda_edge.py (see docs/edge.md)") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    return LambdaConfig.from_dict(raw, source=str(path))


def _header(request: Mapping[str, Any], name: str) -> str | None:
    values = request.get("headers", {}).get(name)
    return values[0]["value"] if values else None


def route_request(request: dict[str, Any], config: LambdaConfig) -> dict[str, Any]:
    """Rewrite the request's custom origin to the chosen region's. Other origins (S3 for the web shell, or a
    domain not in the config) pass through unchanged, so attaching the function to the wrong behaviour is
    harmless."""
    custom = request.get("origin", {}).get("custom")
    if not custom:
        return request
    region_of = {domain: region for region, domain in config.origins.items()}
    current = region_of.get(custom.get("domainName", ""))
    if current is None:
        return request
    decision = choose_origin(
        _header(request, VIEWER_COUNTRY_HEADER), request.get("uri", "/"), config.health, config.policy
    )
    target = decision.region
    if current != config.policy.primary_region:
        # Second invocation of an origin-group failover: the first attempt went to `decision.region` and failed.
        target = config.policy.other(decision.region)
    domain = config.origins[target]
    custom["domainName"] = domain
    request.setdefault("headers", {})["host"] = [{"key": "Host", "value": domain}]
    return request


def make_handler(config: LambdaConfig) -> Handler:
    def handle(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        request: dict[str, Any] = event["Records"][0]["cf"]["request"]
        return route_request(request, config)

    return handle


_loaded: LambdaConfig | None = None


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda@Edge entry point (`lambda_edge.handler`). Config is read once per container."""
    global _loaded
    if _loaded is None:
        _loaded = load_config(Path(__file__).with_name(CONFIG_FILE))
    return make_handler(_loaded)(event, context)
