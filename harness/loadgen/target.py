"""What a run needs to know about its target: the URLs and keys (as production.env names them), whether load may
go there, and whether it answers.

    no --host / --env-file, profile target "reference"  →  the embedded reference stack (started by the run)
    --host URL and/or --env-file production.env          →  that deployment (keys from the file or the environment;
    or profile target "env"                                  a loopback host without keys gets the demo keys)

Load goes only to loopback unless every host is listed in HARNESS_ALLOW_HOSTS (comma-separated; `*.example.com`
matches subdomains) or the user confirms with --confirm-remote (DESIGN.md, safety).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from harness.errors import ConfigError, TargetUnreachable
from harness.refstack import keys
from harness.refstack.stack import Endpoints

ALLOW_HOSTS_VAR = "HARNESS_ALLOW_HOSTS"
TARGET_VARS = (
    "SUPABASE_URL",
    "SUPABASE_ANON_KEY",
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_URL_JAPAN",
    "SUPABASE_ANON_KEY_JAPAN",
    "LIVEKIT_URL",
    "LIVEKIT_API_KEY",
    "LIVEKIT_API_SECRET",
    "DOMAIN_NAME",
)
"""The deployment's production.env names (DESIGN.md, configuration names)."""
URL_VARS = ("SUPABASE_URL", "SUPABASE_URL_JAPAN", "LIVEKIT_URL")
PREFLIGHT_TIMEOUT_S = 5.0


@dataclass
class Target:
    url: str
    """SUPABASE_URL: the edge (CloudFront) in front of the regions."""
    env: dict[str, str] = field(default_factory=dict)
    """production.env names and values for the Locust processes; holds secrets, so never printed."""
    reference: bool = False
    """The embedded reference stack started by this run (China routing can be steered by header)."""

    @property
    def label(self) -> str:
        """The URL without credentials or query, for reports."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}".rstrip("/")

    @property
    def web_url(self) -> str:
        """Where the web shell is served: https://DOMAIN_NAME, else SUPABASE_URL (the reference edge serves both)."""
        domain = self.env.get("DOMAIN_NAME")
        return f"https://{domain}" if domain else self.url


def from_reference(endpoints: Endpoints) -> Target:
    env = {
        **endpoints.describe(),
        "SUPABASE_SERVICE_ROLE_KEY": keys.SERVICE_ROLE_KEY,
        "SUPABASE_ANON_KEY_JAPAN": keys.ANON_KEY,
        "LIVEKIT_API_SECRET": keys.LIVEKIT_API_SECRET,
    }
    return Target(url=env["SUPABASE_URL"], env=env, reference=True)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (`export`, quotes and `#` comments allowed), as docker/dotenv files write them."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--env-file {path}: cannot read: {exc.strerror or exc}") from None
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip().replace("_", "").isalnum():
            raise ConfigError(f"{path}:{number}: not a KEY=VALUE line (e.g. SUPABASE_URL=https://x.supabase.co)")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def from_env(host: str | None, env_file: Path | None, environ: Mapping[str, str] | None = None) -> Target:
    """The deployment named by --host, --env-file and the process environment (in rising precedence: env, file,
    --host)."""
    source = os.environ if environ is None else environ
    values = {k: source[k] for k in TARGET_VARS if source.get(k)}
    if env_file is not None:
        values.update({k: v for k, v in read_env_file(env_file).items() if k in TARGET_VARS})
    if host:
        values["SUPABASE_URL"] = host
    url = values.get("SUPABASE_URL")
    if not url:
        raise ConfigError(
            "no target: give --host URL or --env-file production.env (with SUPABASE_URL=…), or set SUPABASE_URL; "
            'without them a profile with target = "reference" starts the embedded reference stack'
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"SUPABASE_URL: {url!r} is not an http(s) URL (e.g. https://abc.supabase.co)")
    if "SUPABASE_ANON_KEY" not in values and _is_loopback(parts.hostname):
        values["SUPABASE_ANON_KEY"] = keys.ANON_KEY  # a reference stack started by `harness target up`
        values.setdefault("SUPABASE_SERVICE_ROLE_KEY", keys.SERVICE_ROLE_KEY)
    return Target(url=url.rstrip("/"), env=values)


def require_keys(target: Target) -> None:
    """ConfigError when the target lacks the project key every client sends (checked after the safety rule)."""
    if not target.env.get("SUPABASE_ANON_KEY"):
        host = urlsplit(target.url).hostname
        raise ConfigError(f"SUPABASE_ANON_KEY: missing for {host} (set it or put it in --env-file)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _allowed(host: str, allow: list[str]) -> bool:
    return any(pattern == host or (pattern.startswith("*.") and host.endswith(pattern[1:])) for pattern in allow)


def check_allowed(target: Target, confirm_remote: bool, environ: Mapping[str, str] | None = None) -> None:
    """ConfigError unless every host of the target is loopback, allow-listed, or the user confirmed."""
    if confirm_remote:
        return
    source = os.environ if environ is None else environ
    allow = [h.strip().lower() for h in source.get(ALLOW_HOSTS_VAR, "").split(",") if h.strip()]
    for var in URL_VARS:
        url = target.env.get(var) if var != "SUPABASE_URL" else target.url
        host = (urlsplit(url).hostname or "").lower() if url else ""
        if host and not _is_loopback(host) and not _allowed(host, allow):
            raise ConfigError(
                f"{var}: {host} is not a loopback address; load goes elsewhere only when {ALLOW_HOSTS_VAR} lists "
                f"it (e.g. {ALLOW_HOSTS_VAR}={host}) or with --confirm-remote"
            )


def preflight(target: Target) -> None:
    """TargetUnreachable unless the target answers HTTP at all (any status: a 404 still proves it is up)."""
    headers = {"apikey": target.env.get("SUPABASE_ANON_KEY", "")}
    try:
        with httpx.Client(timeout=PREFLIGHT_TIMEOUT_S) as http:
            http.get(f"{target.url}/auth/v1/health", headers=headers)
    except httpx.HTTPError as exc:
        raise TargetUnreachable(
            f"target {target.label} does not answer ({type(exc).__name__}: {exc}); check --host / SUPABASE_URL"
        ) from None
