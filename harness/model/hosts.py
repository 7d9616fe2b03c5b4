"""Which hosts the harness may send traffic to: the one rule every command applies (docs/safety.md).

    host ──► loopback? ─── literal 127.0.0.0/8 or ::1, or the name `localhost` ──────────────► allowed
         └─► in HARNESS_ALLOW_HOSTS? (`staging.example.com`, `*.example.com`) ──────────────► allowed
         └─► confirmed (--confirm-remote) ──────────────────────────────────────────────────► allowed
         └─► otherwise refused, before any packet is sent (`model.target_config.TargetConfig.check_allowed`)

Only addresses that cannot leave the machine count as loopback. A name that merely ends in `.localhost`
(`prod.localhost`) goes through the resolver like any other and may point anywhere, so it is not loopback; nor are
`0.0.0.0`, `::ffff:127.0.0.1` or `localhost.` (each is refused unless allowed like any remote host).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

LOOPBACK_V4 = ipaddress.IPv4Network("127.0.0.0/8")
LOOPBACK_V6 = ipaddress.IPv6Address("::1")
LOOPBACK_NAME = "localhost"


def is_loopback(host: str) -> bool:
    """True for the name `localhost` and for literal loopback addresses (127.0.0.0/8, ::1; IPv6 with or without
    brackets); False for every other name, even one ending in `.localhost`, since a resolver decides where it goes."""
    host = host.lower()
    if host == LOOPBACK_NAME:
        return True
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return address in LOOPBACK_V4
    return address == LOOPBACK_V6


def url_host(url: str) -> str:
    """The host of `url`, lower case and without IPv6 brackets ('' when it has none or cannot be parsed)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def is_loopback_url(url: str) -> bool:
    return is_loopback(url_host(url))


def matches(host: str, pattern: str) -> bool:
    """`pattern` is a host (`staging.example.com`) or a wildcard over its subdomains (`*.example.com`, which does not
    match `example.com` itself nor `evilexample.com`)."""
    host, pattern = host.lower(), pattern.lower().strip("[]")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def allowed(host: str, allow_hosts: Iterable[str]) -> bool:
    """Whether traffic may go to `host` without a confirmation: loopback, or listed in HARNESS_ALLOW_HOSTS."""
    return bool(host) and (is_loopback(host) or any(matches(host, pattern) for pattern in allow_hosts))
