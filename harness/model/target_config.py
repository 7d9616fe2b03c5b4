"""The target: which deployment a run talks to, read from env vars and/or an env file (`--env-file production.env`).

    production.env ──┐   (the file named with --env-file wins over the process environment for the names it sets)
    os.environ ──────┴─► load_target() ──► TargetConfig (secrets wrapped in `Secret`: never in repr, str or logs)

Names are the deployment's own (docs/configuration.md): SUPABASE_URL, SUPABASE_ANON_KEY,
SUPABASE_SERVICE_ROLE_KEY, SUPABASE_URL_JAPAN, SUPABASE_ANON_KEY_JAPAN, LIVEKIT_URL, LIVEKIT_API_KEY,
LIVEKIT_API_SECRET, DOMAIN_NAME. Harness settings use the HARNESS_ prefix (table names, bucket, function name,
region header, allowed hosts). `TargetConfig.for_reference_stack` builds the same object for the embedded stack.

Every problem is a `ConfigError` naming the variable (and the file and line, for env files), the bad value
(never for a secret) and the valid form.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from harness.errors import ConfigError
from harness.model import hosts as _hosts
from harness.model.files import read_text
from harness.model.metrics import REGION_HEADER

NO_TARGET_HELP = (
    "set SUPABASE_URL and SUPABASE_ANON_KEY (and SUPABASE_SERVICE_ROLE_KEY to provision test users) in the "
    "environment, or pass --env-file FILE naming a production.env-style file with those lines"
)

TARGET_URL_SOURCE = "--target-url"
"""The source of a SUPABASE_URL given on the command line (`load_target(supabase_url=...)`)."""
CONFIRM_FLAG = "--confirm-remote"
"""How a user confirms a host that is neither loopback nor allow-listed (named in the refusal)."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]*]+$")


class Secret:
    """A string that never shows itself: repr and str print `***`. Call `reveal()` where the value is sent."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Names:
    """Names of the app's tables, bucket, function and region header (the reference stack's are the defaults)."""

    profiles: str = "profiles"
    """HARNESS_TABLE_PROFILES"""
    conversations: str = "conversations"
    """HARNESS_TABLE_CONVERSATIONS"""
    members: str = "conversation_members"
    """HARNESS_TABLE_MEMBERS"""
    messages: str = "messages"
    """HARNESS_TABLE_MESSAGES"""
    bucket: str = "attachments"
    """HARNESS_STORAGE_BUCKET"""
    livekit_function: str = "livekit-token"
    """HARNESS_LIVEKIT_FUNCTION"""
    region_header: str = REGION_HEADER
    """HARNESS_REGION_HEADER: the response header naming the region that served a request."""


_NAME_VARS = {
    "HARNESS_TABLE_PROFILES": "profiles",
    "HARNESS_TABLE_CONVERSATIONS": "conversations",
    "HARNESS_TABLE_MEMBERS": "members",
    "HARNESS_TABLE_MESSAGES": "messages",
    "HARNESS_STORAGE_BUCKET": "bucket",
    "HARNESS_LIVEKIT_FUNCTION": "livekit_function",
    "HARNESS_REGION_HEADER": "region_header",
}

DEFAULT_HTTP_TIMEOUT_S = 30.0


def names_from_mapping(values: Mapping[str, str], source: str = "environment") -> Names:
    """The HARNESS_TABLE_* / HARNESS_STORAGE_BUCKET / HARNESS_LIVEKIT_FUNCTION / HARNESS_REGION_HEADER names."""
    where = f" ({source})" if source != "environment" else ""
    given = {var: value.strip() for var in _NAME_VARS if (value := values.get(var, "").strip())}
    return Names(**{_NAME_VARS[var]: _identifier(var, value, where) for var, value in given.items()})


@dataclass(frozen=True)
class TargetConfig:
    """One deployment to test. URLs have no trailing slash; secrets are `Secret`s."""

    supabase_url: str
    anon_key: Secret
    service_role_key: Secret | None = None
    """Needed only to provision and clean up test users (admin API); never written to files or reports."""
    supabase_url_japan: str | None = None
    anon_key_japan: Secret | None = None
    livekit_url: str | None = None
    livekit_api_key: str | None = None
    livekit_api_secret: Secret | None = None
    domain_name: str | None = None
    names: Names = field(default_factory=Names)
    allow_hosts: tuple[str, ...] = ()
    """HARNESS_ALLOW_HOSTS: hosts besides loopback that may receive load (comma-separated; `*.example.com`)."""
    http_timeout_s: float = DEFAULT_HTTP_TIMEOUT_S
    """HARNESS_HTTP_TIMEOUT_S: timeout of the harness's own setup calls (provisioning, cleanup, checks)."""
    source: str = "environment"
    """Where the values came from, for messages: `environment`, `production.env`, `reference stack`."""

    @property
    def host(self) -> str:
        return urlsplit(self.supabase_url).hostname or ""

    def is_loopback(self) -> bool:
        return _hosts.is_loopback(self.host)

    def require_service_key(self, purpose: str) -> Secret:
        if self.service_role_key is None:
            raise ConfigError(
                f"SUPABASE_SERVICE_ROLE_KEY is not set ({self.source}); {purpose} needs the project's service_role "
                "key (Supabase dashboard → Project Settings → API)"
            )
        return self.service_role_key

    def hosts(self) -> list[tuple[str, str]]:
        """(variable, host) of every place this target sends traffic to, in the order they are checked."""
        urls = (("SUPABASE_URL", self.supabase_url), ("SUPABASE_URL_JAPAN", self.supabase_url_japan),
                ("LIVEKIT_URL", self.livekit_url))  # fmt: skip
        out = [(name, _hosts.url_host(url)) for name, url in urls if url]
        if self.domain_name:
            out.append(("DOMAIN_NAME", self.domain_name.lower()))  # the web shell: https://DOMAIN_NAME
        return out

    def check_allowed(self, *, confirmed: bool = False, confirm_hint: str = CONFIRM_FLAG) -> None:
        """ConfigError unless every host of `hosts()` is loopback, in HARNESS_ALLOW_HOSTS, or `confirmed` (the
        user's --confirm-remote). Called before the first request of every command that talks to a target."""
        for name, host in self.hosts():
            source = self._source_of(name)
            where = f" ({source})" if source != "environment" else ""
            self.check_host(f"{name}{where}", host, confirmed=confirmed, confirm_hint=confirm_hint)

    def _source_of(self, name: str) -> str:
        """Where variable `name` came from: --target-url sets SUPABASE_URL alone."""
        flag = TARGET_URL_SOURCE
        if name == "SUPABASE_URL" or flag not in self.source:
            return self.source
        return "environment" if self.source == flag else self.source.removesuffix(f" and {flag}")

    def check_url(self, what: str, url: str, *, confirmed: bool = False, confirm_hint: str = CONFIRM_FLAG) -> None:
        """The same rule for a URL the target hands out (the LiveKit URL its token function returns), checked
        before it is used; `what` names it in the message."""
        host = _hosts.url_host(url)
        if not host:
            raise ConfigError(f"{what}: {url!r} is not a URL with a host")
        self.check_host(what, host, confirmed=confirmed, confirm_hint=confirm_hint)

    def check_host(self, what: str, host: str, *, confirmed: bool = False, confirm_hint: str = CONFIRM_FLAG) -> None:
        if confirmed or _hosts.allowed(host, self.allow_hosts):
            return
        raise ConfigError(
            f"{what}: {host} is not a loopback address (127.0.0.0/8, ::1, localhost); the harness sends traffic "
            f"elsewhere only when HARNESS_ALLOW_HOSTS lists it (e.g. HARNESS_ALLOW_HOSTS={host}) or with {confirm_hint}"
        )

    @classmethod
    def for_reference_stack(cls, supabase_url: str, *, japan_url: str | None = None) -> TargetConfig:
        """The embedded reference stack at `supabase_url` (its demo keys are public and local-only)."""
        from harness.model import keys

        return cls(
            supabase_url=supabase_url.rstrip("/"),
            anon_key=Secret(keys.ANON_KEY),
            service_role_key=Secret(keys.SERVICE_ROLE_KEY),
            supabase_url_japan=japan_url.rstrip("/") if japan_url else None,
            anon_key_japan=Secret(keys.ANON_KEY) if japan_url else None,
            livekit_api_key=keys.LIVEKIT_API_KEY,
            livekit_api_secret=Secret(keys.LIVEKIT_API_SECRET),
            source="reference stack",
        )


# ---- reading ----------------------------------------------------------------------------------------------------


def target_configured(env_file: Path | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether a target is named at all (else the orchestrator uses the embedded reference stack)."""
    return env_file is not None or bool((os.environ if environ is None else environ).get("SUPABASE_URL"))


def load_target(
    env_file: Path | None = None, environ: Mapping[str, str] | None = None, *, supabase_url: str | None = None
) -> TargetConfig:
    """Reads the target from `environ` (default os.environ) and `env_file` (whose values win); ConfigError if bad.

    `supabase_url` (a `--target-url` flag) overrides SUPABASE_URL. A loopback target with no keys set gets the
    Supabase local-development demo keys, which both `supabase start` and the embedded reference stack use.
    """
    values = dict(os.environ if environ is None else environ)
    source = "environment"
    if env_file is not None:
        values.update(read_env_file(env_file))
        source = str(env_file)
    if supabase_url is not None:
        values["SUPABASE_URL"] = supabase_url
        source = TARGET_URL_SOURCE if env_file is None else f"{source} and {TARGET_URL_SOURCE}"
    url = values.get("SUPABASE_URL", "").strip()
    if url and _hosts.is_loopback_url(url):
        from harness.model import keys

        for name, demo in (("SUPABASE_ANON_KEY", keys.ANON_KEY), ("SUPABASE_SERVICE_ROLE_KEY", keys.SERVICE_ROLE_KEY)):
            if not values.get(name, "").strip():
                values[name] = demo
    return target_from_mapping(values, source)


def read_env_file(path: Path) -> dict[str, str]:
    """Parses `NAME=VALUE` lines (`export ` prefix, `#` comments, single or double quotes) as docker and dotenv do."""
    text = read_text(path, "env file")
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not _NAME.match(name):
            # The line is not quoted back: it may hold a key pasted without its name.
            raise ConfigError(
                f"{path}:{number}: expected NAME=VALUE (e.g. SUPABASE_URL=https://x.supabase.co); this line is not "
                "(its text is not shown, it may hold a secret)"
            )
        out[name] = _unquote(value.strip(), f"{path}:{number}: {name}")
    return out


def _unquote(value: str, where: str) -> str:
    if value[:1] in ("'", '"'):
        quote = value[0]
        end = value.find(quote, 1)
        if end < 0:
            raise ConfigError(f"{where}: the value opens a {quote} quote but never closes it")
        return value[1:end]
    # An unquoted value ends at ` #` (an inline comment), as in docker compose env files.
    return re.split(r"\s+#", value, maxsplit=1)[0].strip()


def target_from_mapping(values: Mapping[str, str], source: str = "environment") -> TargetConfig:
    """Builds and validates a TargetConfig from variable → value; `source` names the origin in messages."""

    def get(name: str) -> str | None:
        value = values.get(name)
        return value.strip() if value is not None and value.strip() else None

    where = f" ({source})" if source != "environment" else ""
    url = get("SUPABASE_URL")
    if url is None:
        raise ConfigError(
            f"SUPABASE_URL is not set{where}: no target to test. To point the harness at one, {NO_TARGET_HELP}"
        )
    url = _http_url("SUPABASE_URL", url, where)
    anon = get("SUPABASE_ANON_KEY")
    if anon is None:
        raise ConfigError(
            f"SUPABASE_ANON_KEY is not set{where}; it is the project's anon (public) key, a JWT or sb_publishable_… "
            "(Supabase dashboard → Project Settings → API)"
        )
    japan = get("SUPABASE_URL_JAPAN")
    names = names_from_mapping(values, source)
    return TargetConfig(
        supabase_url=url,
        anon_key=_key("SUPABASE_ANON_KEY", anon, where),
        service_role_key=_opt_key("SUPABASE_SERVICE_ROLE_KEY", get("SUPABASE_SERVICE_ROLE_KEY"), where),
        supabase_url_japan=_http_url("SUPABASE_URL_JAPAN", japan, where) if japan else None,
        anon_key_japan=_opt_key("SUPABASE_ANON_KEY_JAPAN", get("SUPABASE_ANON_KEY_JAPAN"), where),
        livekit_url=_livekit_url(get("LIVEKIT_URL"), where),
        livekit_api_key=get("LIVEKIT_API_KEY"),
        livekit_api_secret=Secret(s) if (s := get("LIVEKIT_API_SECRET")) else None,
        domain_name=_domain(get("DOMAIN_NAME"), where),
        names=names,
        allow_hosts=_allow_hosts(get("HARNESS_ALLOW_HOSTS"), where),
        http_timeout_s=_seconds("HARNESS_HTTP_TIMEOUT_S", get("HARNESS_HTTP_TIMEOUT_S"), where),
        source=source,
    )


# ---- validators: each names the variable, the value (unless secret) and the valid form ---------------------------


def _http_url(name: str, value: str, where: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}{where}: {value!r} is not an http(s) URL (e.g. https://abcdefgh.supabase.co)")
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        raise ConfigError(
            f"{name}{where}: {value!r} has a path or query; give the project's base URL only "
            "(e.g. https://abcdefgh.supabase.co, without /rest/v1)"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"{name}{where}: {value!r} has an invalid port (e.g. http://127.0.0.1:54321)") from None
    return value.rstrip("/")


def _livekit_url(value: str | None, where: str) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("ws", "wss", "http", "https") or not parts.hostname:
        raise ConfigError(
            f"LIVEKIT_URL{where}: {value!r} is not a ws(s) or http(s) URL (e.g. wss://livekit.example.com)"
        )
    return value.rstrip("/")


def _key(name: str, value: str, where: str) -> Secret:
    # The value is a secret: the message describes it, never quotes it.
    is_jwt = value.count(".") == 2 and all(re.fullmatch(r"[A-Za-z0-9_\-]+", p) for p in value.split("."))
    if not (is_jwt or value.startswith(("sb_publishable_", "sb_secret_"))):
        raise ConfigError(
            f"{name}{where}: the value ({len(value)} characters, not shown) is not a Supabase key; expected a JWT "
            "(three base64url parts separated by dots, eyJ…) or an sb_publishable_… / sb_secret_… key"
        )
    return Secret(value)


def _opt_key(name: str, value: str | None, where: str) -> Secret | None:
    return _key(name, value, where) if value is not None else None


def _identifier(name: str, value: str | None, where: str) -> str:
    assert value is not None
    if not _IDENT.match(value):
        raise ConfigError(f"{name}{where}: {value!r} is not a name (letters, digits, _ and -, e.g. messages)")
    return value


def _domain(value: str | None, where: str) -> str | None:
    if value is None:
        return None
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9\-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9\-]*[A-Za-z0-9])?)*", value):
        raise ConfigError(f"DOMAIN_NAME{where}: {value!r} is not a domain name (e.g. chat.example.com, no scheme)")
    return value


def _allow_hosts(value: str | None, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    patterns = tuple(h.strip().lower() for h in value.split(",") if h.strip())
    for host in patterns:
        if not _HOST.match(host):
            raise ConfigError(
                f"HARNESS_ALLOW_HOSTS{where}: {host!r} is not a host name; give a comma-separated list of hosts "
                "(e.g. staging.example.com,*.supabase.co)"
            )
    return patterns


def _seconds(name: str, value: str | None, where: str) -> float:
    if value is None:
        return DEFAULT_HTTP_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigError(f"{name}{where}: {value!r} is not a positive number of seconds (e.g. 30)")
    return seconds
