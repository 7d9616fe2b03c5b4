"""China runs: every user group whose network is not the direct one reaches the target through its own Toxiproxy
proxies, with its network profile's toxics applied; with `--kernel` its Locust workers also run inside a network
namespace whose ingress drops packets (real TCP loss, real retransmissions).

    baseline workers (HARNESS_GROUP baseline, country SG) ────────────────────────► edge ─► Singapore (54321)
    china workers    (country CN)                                                     │
      [netns harness-…: nftables loss] ─► Toxiproxy listener ─ latency, bandwidth,  ─► edge ─► Japan (CN viewers)
                                      └─► Toxiproxy listener   stall toxics       ─► LiveKit

Everything listens on 127.0.0.0/8: without --kernel on 127.0.0.1; with --kernel the Toxiproxy API and listeners
and the Locust master bind the namespace's host-side address (127.100.x.1), the one address the namespace reaches.
Everything is undone by the ExitStack the orchestrator passes in (toxics, proxies, Toxiproxy, namespace).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from harness.errors import ConfigError, NetworkShapingError
from harness.model.profile import Profile
from harness.network import kernel
from harness.network.profiles import Bandwidth, NetworkProfile, load_stack
from harness.network.profiles import load_profile as load_network
from harness.network.render import nftables_script, not_rendered, render_all, toxiproxy_toxics
from harness.network.toxiproxy_client import ToxiproxyClient
from harness.procs.piece import PieceProcess
from harness.run.progress import say

DIRECT_NETWORK = "baseline-lan"
"""Groups on this network talk to the target directly: loopback already is a LAN."""
CHINA_COUNTRY = "CN"
"""`--network` / `--overlay` change the network of the groups claiming this country."""
TOXIPROXY_URL_VAR = "TOXIPROXY_URL"
"""When set, a real (or already running) Toxiproxy is used instead of starting the embedded one."""
NETWORK_FILE = "network.json"
"""What a shaped run applied, per group: profiles, sources and renderings (in the run's report folder)."""
TOXIPROXY_FACTORY = "harness.network.toxiproxy.api:build_app"
TOXIPROXY_LISTEN_HOST_VAR = "HARNESS_TOXIPROXY_LISTEN_HOST"
"""Where a real Toxiproxy opens the proxies' listeners (default: the host of TOXIPROXY_URL)."""
TOXIPROXY_ADVERTISE_HOST_VAR = "HARNESS_TOXIPROXY_ADVERTISE_HOST"
"""The host workers reach the listeners at, when it differs from where they listen (distributed runs: listeners on
0.0.0.0 in the Toxiproxy container or the master's pod, reached at its service name)."""
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True)
class GroupPath:
    """How one shaped group reaches the target."""

    group: str
    network: NetworkProfile
    urls: dict[str, str]
    """SUPABASE_URL and LIVEKIT_URL as the group's workers see them (Toxiproxy listeners)."""
    proxies: dict[str, dict[str, str]] = field(default_factory=dict)
    """proxy name → {listen, upstream}."""
    toxics: list[dict[str, Any]] = field(default_factory=list)
    namespace: kernel.Namespace | None = None
    kernel_rules: dict[str, Any] = field(default_factory=dict)


# ---- planning: pure ----


def with_network(profile: Profile, network: str | None) -> Profile:
    """The profile with `--network` set on every group claiming country CN (ConfigError when there is none)."""
    if network is None:
        return profile
    china = [name for name, g in profile.groups.items() if g.country == CHINA_COUNTRY]
    if not china:
        raise ConfigError(
            f"--network: profile {profile.name} has no group with country = {CHINA_COUNTRY!r} to shape "
            f"(groups: {', '.join(profile.groups)}); use `harness china` or add one"
        )
    groups = {n: g.model_copy(update={"network": network}) if n in china else g for n, g in profile.groups.items()}
    return profile.model_copy(update={"groups": groups})


def named_networks(profile: Profile) -> Profile:
    """The profile as profile.json carries it to the Locust processes, whose groups name their network (a label in
    the result, checked as a netem/ name): a group given a file by `--network PATH` is labelled with the name the
    file gives itself (`name = …`, else the file's name). The shaping, done by the orchestrator, uses the file."""
    groups = {}
    for name, group in profile.groups.items():
        if group.network.endswith(".toml") or "/" in group.network:
            own = load_network(group.network).name
            label = re.sub(r"[^a-z0-9._-]+", "-", own.lower()).strip("-._") or "custom"
            group = group.model_copy(update={"network": label})
        groups[name] = group
    return profile.model_copy(update={"groups": groups})


def shaped_networks(profile: Profile, overlays: tuple[str, ...] = ()) -> dict[str, NetworkProfile]:
    """group → its network profile (overlays stacked on CN groups), for every group not on the direct network."""
    if overlays and not any(g.country == CHINA_COUNTRY for g in profile.groups.values()):
        raise ConfigError(f"--overlay: profile {profile.name} has no group with country = {CHINA_COUNTRY!r}")
    out: dict[str, NetworkProfile] = {}
    for name, group in profile.groups.items():
        stacked = overlays if group.country == CHINA_COUNTRY else ()
        if group.network == DIRECT_NETWORK and not stacked:
            continue
        out[name] = load_stack(group.network, list(stacked))
    return out


def worker_split(profile: Profile, workers: int) -> dict[str, int]:
    """Workers per group, in proportion to the groups' weights, at least one each. Locust spreads users evenly
    over workers, so this is also each group's share of users."""
    weights = {name: max(g.weight, 0) for name, g in profile.groups.items()}
    total = sum(weights.values()) or len(weights)
    return {name: max(1, round(workers * (w or 1) / total)) for name, w in weights.items()}


def group_profile(profile: Profile, group: str, *, keep_country: bool) -> Profile:
    """The profile a group's workers read: only that group, so every user they start belongs to it. The country
    claim is dropped for targets other than the reference stack (a real CloudFront sets it from the viewer's IP)."""
    g = profile.groups[group]
    if not keep_country:
        g = g.model_copy(update={"country": None})
    return profile.model_copy(update={"groups": {group: g}})


def upstream_of(url: str) -> str:
    """`http://127.0.0.1:54320` → `127.0.0.1:54320` (default ports filled in)."""
    parts = urlsplit(url)
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    if not parts.hostname or port is None:
        raise ConfigError(f"{url!r} is not a URL with a host (e.g. http://127.0.0.1:54320)")
    return f"{parts.hostname}:{port}"


def via(url: str, listen: str) -> str:
    """`url` with its host and port replaced by a proxy's `listen` address."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, listen, parts.path, parts.query, parts.fragment)).rstrip("/")


def advertised(listen: str) -> str:
    """A listener's address as workers reach it: HARNESS_TOXIPROXY_ADVERTISE_HOST in place of its host, if set."""
    host = os.environ.get(TOXIPROXY_ADVERTISE_HOST_VAR, "").strip()
    return f"{host}:{listen.rsplit(':', 1)[1]}" if host else listen


def kernel_part(network: NetworkProfile) -> NetworkProfile:
    """What the kernel applies: the loss only. Rates stay per connection in Toxiproxy, as measured (ZHU: each
    connection under 1 Mbps); a tbf on the namespace would cap all the group's users together."""
    return dataclasses.replace(network, bandwidth=Bandwidth(), faults=(), events=())


def fingerprint(network: NetworkProfile) -> str:
    """A content hash of the applied values (result.json's `network_profiles`)."""
    text = json.dumps(dataclasses.asdict(network), sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def describe(paths: Mapping[str, GroupPath], toxiproxy_url: str) -> dict[str, Any]:
    """network.json: per group, the applied profile (values and sources), every rendering and what was applied."""
    out: dict[str, Any] = {"toxiproxy": toxiproxy_url, "groups": {}}
    for name, p in paths.items():
        out["groups"][name] = {
            "profile": p.network.name,
            "fingerprint": fingerprint(p.network),
            "values": dataclasses.asdict(p.network),
            "renderings": render_all(p.network),
            "applied": {
                "toxiproxy": p.toxics,
                "kernel": p.kernel_rules or None,
                "not_rendered": not_rendered(p.network),
            },
            "proxies": p.proxies,
            "urls": p.urls,
            "namespace": dataclasses.asdict(p.namespace) if p.namespace else None,
        }
    return out


# ---- what killed runs left behind ----


def reap_leftovers(log: TextIO) -> None:
    """Remove what dead harness processes recorded (namespaces, links, tables, temporary directories: a kill -9
    runs no cleanup) before this run starts; a running one's are kept. Best effort: a run never fails on it."""
    try:
        done = kernel.reap()
    except ConfigError as exc:  # an unsafe state directory: nothing is recorded there either
        print(f"harness: warning: {exc}", file=log)
        return
    if done.removed:
        print(f"harness: removed what killed harness runs left behind: {', '.join(done.removed)}", file=log)
    if done.failed:
        print(
            f"harness: warning: could not remove {'; '.join(done.failed)} (kept for `harness net clear --kernel`)",
            file=log,
        )


# ---- Toxiproxy ----


def toxiproxy_url(stack: contextlib.ExitStack, host: str, out_dir: Path, log: TextIO) -> tuple[str, str]:
    """(API URL, listen host): TOXIPROXY_URL when set, else an embedded Toxiproxy started on `host` (stopped by
    `stack`)."""
    external = os.environ.get(TOXIPROXY_URL_VAR, "").strip().rstrip("/")
    if external:
        listen = os.environ.get(TOXIPROXY_LISTEN_HOST_VAR, "").strip() or urlsplit(external).hostname or host
        if host != "127.0.0.1":
            listen = host  # --kernel: the namespace reaches only its host-side address
        print(f"harness: using Toxiproxy at {external} ({TOXIPROXY_URL_VAR}); listeners on {listen}", file=log)
        return external, listen
    process = PieceProcess(
        "toxiproxy", TOXIPROXY_FACTORY, out_dir / "toxiproxy.log", options={"host_for_listeners": host}, host=host
    )
    stack.callback(process.stop)
    url = f"http://{host}:{process.port}"
    print(f"harness: embedded Toxiproxy at {url}", file=log)
    return url, host


def _delete_proxies(client: ToxiproxyClient, names: list[str], log: TextIO) -> None:
    for name in reversed(names):
        try:
            client.delete_proxy(name)
        except NetworkShapingError as exc:
            if " 404:" not in str(exc):
                print(f"harness: warning: {exc}; remove it with `harness net clear`", file=log)


# ---- opening the shaped paths ----


def open_paths(
    stack: contextlib.ExitStack,
    networks: Mapping[str, NetworkProfile],
    urls: Mapping[str, str],
    *,
    use_kernel: bool,
    out_dir: Path,
    log: TextIO,
) -> tuple[dict[str, GroupPath], str]:
    """For each shaped group: (namespace), proxies in front of `urls` (SUPABASE_URL, LIVEKIT_URL), toxics.
    Everything is registered on `stack` for removal, in reverse order. Returns the paths and the Toxiproxy URL."""
    if not networks:
        return {}, ""
    namespaces: dict[str, kernel.Namespace] = {}
    if use_kernel:
        kernel.check_available()
        if len(networks) > 1:
            raise ConfigError(
                f"--kernel: {len(networks)} shaped groups ({', '.join(networks)}); kernel shaping supports one "
                "(the Locust master must be reachable from its namespace); drop --kernel or shape one group"
            )
        for group, network in networks.items():
            namespaces[group] = stack.enter_context(kernel.shaped_namespace(kernel_part(network)))
    host = next(iter(namespaces.values())).host_addr if namespaces else "127.0.0.1"
    api_url, listen_host = toxiproxy_url(stack, host, out_dir, log)
    client = stack.enter_context(ToxiproxyClient(api_url))
    client.version()  # fail early with the client's message when nothing answers there
    run_tag = secrets.token_hex(3)
    created: list[str] = []
    stack.callback(_delete_proxies, client, created, log)
    paths: dict[str, GroupPath] = {}
    for group, network in networks.items():
        ns = namespaces.get(group)
        group_urls, proxies = {}, {}
        for var, url in urls.items():
            name = f"harness-{run_tag}-{group}-{var.split('_')[0].lower()}"
            proxy = client.create_proxy(name, upstream_of(url), listen=f"{listen_host}:0")
            created.append(name)
            group_urls[var] = via(url, advertised(proxy.listen))
            proxies[name] = {"listen": proxy.listen, "upstream": proxy.upstream}
        toxics = stack.enter_context(client.applied(network, list(proxies)))
        rules: dict[str, Any] = {}
        if ns is not None:
            rules = {"nftables": nftables_script(kernel_part(network), ns.ns_ifname, kernel.NFT_TABLE)}
        paths[group] = GroupPath(group, network, group_urls, proxies, toxics, ns, rules)
        shaped = ", ".join(f"{t['type']} {t['stream']}" for t in toxiproxy_toxics(network)) or "no toxics"
        where = f" from namespace {ns.name} ({ns.ns_addr}; kernel loss {network.loss.percent.value:g} %)" if ns else ""
        print(f"harness: group {group}: {network.name} via Toxiproxy ({shaped}){where}", file=log)
    return paths, api_url


def write_network(out_dir: Path, paths: dict[str, GroupPath], api_url: str, log: TextIO) -> dict[str, str]:
    """network.json (the applied profiles, sources, renderings); returns result.json's `network_profiles`."""
    if not paths:
        return {}
    (out_dir / NETWORK_FILE).write_text(json.dumps(describe(paths, api_url), indent=2, default=str), "utf-8")
    say(log, f"applied network conditions recorded in {out_dir / NETWORK_FILE}")
    return {p.network.name: fingerprint(p.network) for p in paths.values()}
