"""A run's target as the orchestrator uses it: a `model.target_config.TargetConfig` (which reads, validates and hides
the values) plus what the run adds: whether it is the reference stack it started, the environment handed to Locust
processes, the safety rule over every URL, and a preflight request.

    no --host / --env-file, profile target "reference"  →  the embedded reference stack (started by the run)
    --host URL and/or --env-file production.env          →  model.target_config.load_target (file wins over environment,
    or profile target "env"                                  --host wins over both; loopback gets the demo keys)

Reading env files, key validation and the allow-list live in `model.target_config` only; nothing here parses them.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from harness.clients.supabase import api
from harness.errors import TargetUnreachable
from harness.model import keys
from harness.model.target_config import TargetConfig, load_target, target_from_mapping
from harness.refstack.stack import Endpoints
from harness.scenarios.settings import REFERENCE_STACK

PREFLIGHT_TIMEOUT_S = 5.0
"""How long the target may take to answer the preflight request."""
URL_VARS = ("SUPABASE_URL", "SUPABASE_URL_JAPAN", "LIVEKIT_URL")
"""Every URL load may go to; each host (and DOMAIN_NAME's) must pass the safety rule (`TargetConfig.hosts`)."""


@dataclass
class Target:
    url: str
    """SUPABASE_URL: the edge (CloudFront) in front of the regions."""
    env: dict[str, str] = field(default_factory=dict)
    """production.env names and values for the Locust processes; holds secrets, so never printed."""
    reference: bool = False
    """The embedded reference stack started by this run (China routing can be steered by header)."""
    config: TargetConfig | None = None
    """The validated target (None only for the ad-hoc targets older callers build from a URL)."""

    @property
    def label(self) -> str:
        """The URL without credentials or query, for reports."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}".rstrip("/")

    @property
    def web_url(self) -> str:
        """Where the web shell is served: https://DOMAIN_NAME, else SUPABASE_URL (the reference edge serves both)."""
        domain = self.env.get("DOMAIN_NAME")
        return f"https://{domain}" if domain else self.url

    @property
    def livekit_url(self) -> str | None:
        return self.env.get("LIVEKIT_URL") or None


def child_env(config: TargetConfig) -> dict[str, str]:
    """The target as production.env names, secrets revealed: only ever passed to child processes' environments."""
    values = {
        "SUPABASE_URL": config.supabase_url,
        "SUPABASE_ANON_KEY": config.anon_key.reveal(),
        "SUPABASE_SERVICE_ROLE_KEY": config.service_role_key.reveal() if config.service_role_key else None,
        "SUPABASE_URL_JAPAN": config.supabase_url_japan,
        "SUPABASE_ANON_KEY_JAPAN": config.anon_key_japan.reveal() if config.anon_key_japan else None,
        "LIVEKIT_URL": config.livekit_url,
        "LIVEKIT_API_KEY": config.livekit_api_key,
        "LIVEKIT_API_SECRET": config.livekit_api_secret.reveal() if config.livekit_api_secret else None,
        "DOMAIN_NAME": config.domain_name,
        # The workers check every host again (scenarios.runstate): they must apply the same allow-list, also when
        # it came from --env-file rather than the environment they inherit.
        "HARNESS_ALLOW_HOSTS": ",".join(config.allow_hosts),
    }
    return {k: v for k, v in values.items() if v}


def from_config(config: TargetConfig, *, reference: bool = False) -> Target:
    return Target(url=config.supabase_url, env=child_env(config), reference=reference, config=config)


def reference_config(endpoints: Endpoints) -> TargetConfig:
    """The reference stack's target: the edge as SUPABASE_URL, Japan, LiveKit, and the public demo keys."""
    config = TargetConfig.for_reference_stack(
        endpoints.edge_url, japan_url=endpoints.describe().get("SUPABASE_URL_JAPAN")
    )
    return dataclasses.replace(config, livekit_url=endpoints.describe().get("LIVEKIT_URL"))


def from_reference(endpoints: Endpoints) -> Target:
    return from_config(reference_config(endpoints), reference=True)


def resolve(host: str | None, env_file: Path | None) -> Target:
    """The deployment named by --host, --env-file and the environment (model.target_config's precedence, checks).
    HARNESS_REFERENCE_STACK=1 marks it as a reference stack started elsewhere (compose): China routing by header."""
    config = load_target(env_file, supabase_url=host.rstrip("/") if host else None)
    return from_config(config, reference=os.environ.get(REFERENCE_STACK) == "1")


def check_allowed(target: Target, confirm_remote: bool) -> None:
    """ConfigError unless every host the run sends traffic to (SUPABASE_URL, SUPABASE_URL_JAPAN, LIVEKIT_URL,
    DOMAIN_NAME) is loopback, in HARNESS_ALLOW_HOSTS, or the user confirmed: before the first request."""
    allow_list(target).check_allowed(confirmed=confirm_remote)


def check_url(target: Target, what: str, url: str, confirm_remote: bool) -> None:
    """The same rule for a URL a response names (the LiveKit URL the token function returns), before it is used."""
    allow_list(target).check_url(what, url, confirmed=confirm_remote)


def allow_list(target: Target) -> TargetConfig:
    """The validated config whose hosts and HARNESS_ALLOW_HOSTS the rule applies to (for a bare ad-hoc target: one
    built from its URLs, with the allow-list from the environment)."""
    if target.config is not None:
        return target.config
    values = {name: target.env[name] for name in (*URL_VARS, "DOMAIN_NAME") if target.env.get(name)}
    values |= {"SUPABASE_URL": target.url, "SUPABASE_ANON_KEY": keys.ANON_KEY}  # the public demo key: never sent
    values["HARNESS_ALLOW_HOSTS"] = os.environ.get("HARNESS_ALLOW_HOSTS", "")
    return target_from_mapping(values)


def preflight(target: Target) -> None:
    """TargetUnreachable unless the target answers HTTP at all (any status: a 404 still proves it is up)."""
    key = target.env.get("SUPABASE_ANON_KEY", "")
    headers = api.key_headers(key) if key else {}
    try:
        with httpx.Client(timeout=PREFLIGHT_TIMEOUT_S) as http:
            http.get(target.url.rstrip("/") + api.AUTH_HEALTH, headers=headers)
    except httpx.HTTPError as exc:
        raise TargetUnreachable(
            f"target {target.label} does not answer ({type(exc).__name__}: {exc}); check --host / SUPABASE_URL"
        ) from None
