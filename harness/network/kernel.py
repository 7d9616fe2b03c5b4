"""Kernel shaping on this machine: a network namespace joined to the host by a veth pair on 127.100.0.0/16.

    host netns                                          netns harness-<id>  ("the user in China")
    ┌──────────────────────────────┐   veth pair      ┌─────────────────────────────────────┐
    │ harness-<id>  127.100.x.1/30 │◄────────────────►│ veth0  127.100.x.2/30               │
    │ egress: tbf (downstream rate)│                  │ egress: tbf (upstream rate)         │
    │ servers, Toxiproxy listeners │                  │ ingress: nftables drop (loss)       │
    └──────────────────────────────┘                  │ clients run here: ns.exec_argv(...) │
                                                      └─────────────────────────────────────┘

Downstream (server → user) is host → namespace, so loss is dropped on the namespace's ingress (the receiver's
side, so the sender's TCP sees real loss) and the downstream rate is a tbf on the host end. Both ends set
`route_localnet=1` so 127.x is routed over the veth; a /32 route in the `local` table keeps the peer address off
`lo` even when policy rules split the local and main tables. GSO is off on the veth so packets have real sizes.

Everything the namespace holds (nftables table, namespace-side qdisc) dies with it; deleting the namespace also
deletes the host end of the veth. Each is recorded before it is made (harness/procs/leftovers.py: kinds `netns`,
`link`, `nft`) and forgotten once removed, so after a kill -9 `reap()` (run by `harness net clear --kernel`, every
shaping session and every run) removes what the dead process made, and only that: the namespaces of a run still in
progress, or of anything else named `harness-*`, are left alone.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from harness.errors import NetworkShapingError
from harness.network.profiles import NetworkProfile
from harness.network.render import nftables_script, tbf_commands
from harness.procs import leftovers

log = logging.getLogger(__name__)

PREFIX = "harness-"
"""Names of our namespaces and host-side veths: `harness-` + 6 hex digits (14 chars, under IFNAMSIZ)."""

NFT_TABLE = "harness_shaping"
"""The nftables table (family inet) holding the loss rules, inside the namespace."""

NS_IFNAME = "veth0"
"""The namespace end of the veth pair."""

SUBNET = ipaddress.IPv4Network("127.100.0.0/16")
"""Each namespace gets one /30 of this: .1 on the host end, .2 in the namespace. Loopback only, never routed out."""

COMMAND_TIMEOUT_S = 10.0
"""Bound on every ip/nft/tc call."""


@dataclass(frozen=True)
class Namespace:
    name: str
    host_ifname: str
    ns_ifname: str
    host_addr: str
    """Address of the host end: servers/listeners the namespace should reach bind here."""
    ns_addr: str
    """Address inside the namespace."""

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], timeout_s: float = COMMAND_TIMEOUT_S) -> str:
        """Run `argv` inside the namespace; return stdout or raise NetworkShapingError."""
        return _run(self.exec_argv(argv), timeout_s)


def check_available() -> None:
    """Raise NetworkShapingError unless this process can shape the kernel (root, `ip`, `nft`, `tc`)."""
    if os.geteuid() != 0:
        raise NetworkShapingError(
            "kernel network shaping (namespaces, nftables loss, tc rate) needs root: run as root, "
            "or shape with Toxiproxy only (latency, bandwidth, faults; no packet loss)"
        )
    missing = [tool for tool in ("ip", "nft", "tc") if shutil.which(tool) is None]
    if missing:
        raise NetworkShapingError(
            f"kernel network shaping needs {', '.join(missing)} on PATH: install iproute2 and nftables "
            "(apt-get install iproute2 nftables)"
        )


def _run(argv: Sequence[str], timeout_s: float = COMMAND_TIMEOUT_S, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        raise NetworkShapingError(f"{argv[0]} is not installed (needed for: {' '.join(argv)})") from None
    except subprocess.TimeoutExpired:
        raise NetworkShapingError(f"{' '.join(argv)} did not finish within {timeout_s:g} s") from None
    if done.returncode != 0:
        raise NetworkShapingError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _used_slots() -> set[int]:
    out = _run(["ip", "-j", "-4", "addr", "show"])
    slots = set()
    for link in json.loads(out or "[]"):
        for info in link.get("addr_info", []):
            addr = ipaddress.IPv4Address(info.get("local", "0.0.0.0"))
            if addr in SUBNET:
                slots.add((int(addr) - int(SUBNET.network_address)) // 4)
    return slots


def _pick(used: set[int]) -> tuple[str, int]:
    for _ in range(64):
        ident = secrets.token_hex(3)
        slot = int(ident, 16) % (SUBNET.num_addresses // 4)
        if slot not in used and not os.path.exists(f"/run/netns/{PREFIX}{ident}"):
            return ident, slot
    raise NetworkShapingError(f"no free /30 left in {SUBNET} for a new namespace: run `harness net clear --kernel`")


def create_namespace() -> Namespace:
    """Create `harness-<id>` with a veth pair on a free /30 of 127.100.0.0/16; no shaping yet."""
    check_available()
    ident, slot = _pick(_used_slots())
    base = int(SUBNET.network_address) + 4 * slot
    host_addr, ns_addr = str(ipaddress.IPv4Address(base + 1)), str(ipaddress.IPv4Address(base + 2))
    ns = Namespace(f"{PREFIX}{ident}", f"{PREFIX}{ident}", NS_IFNAME, host_addr, ns_addr)
    leftovers.record(NETNS, ns.name)  # before it exists: a kill in between leaves a record, never an orphan
    leftovers.record(LINK, ns.host_ifname)
    try:
        _run(["ip", "netns", "add", ns.name])
        _run(["ip", "link", "add", ns.host_ifname, "type", "veth", "peer", "name", ns.ns_ifname, "netns", ns.name])
        # route_localnet lets 127.x leave lo: without it the kernel drops these as martians.
        with open(f"/proc/sys/net/ipv4/conf/{ns.host_ifname}/route_localnet", "w") as f:
            f.write("1")
        ns.run(["sysctl", "-qw", f"net.ipv4.conf.{ns.ns_ifname}.route_localnet=1"])
        for prefix, dev, addr, peer in (
            ([], ns.host_ifname, host_addr, ns_addr),
            (["-n", ns.name], ns.ns_ifname, ns_addr, host_addr),
        ):
            ip = ["ip", *prefix]
            _run([*ip, "link", "set", "dev", dev, "gso_max_segs", "1"])
            _run([*ip, "addr", "add", f"{addr}/30", "dev", dev])
            _run([*ip, "link", "set", "dev", dev, "up"])
            _run([*ip, "route", "replace", f"{peer}/32", "dev", dev, "src", addr, "table", "local"])
        _run(["ip", "-n", ns.name, "link", "set", "dev", "lo", "up"])
    except BaseException:
        destroy_namespace(ns)
        raise
    return ns


def apply_profile(ns: Namespace, profile: NetworkProfile) -> None:
    """Install the profile's downstream loss (nftables, in the namespace) and rates (tbf on both veth ends)."""
    script = nftables_script(profile, ns.ns_ifname, NFT_TABLE)
    if script:
        leftovers.record(NFT, f"{ns.name} inet {NFT_TABLE}")
        _run(ns.exec_argv(["nft", "-f", "-"]), stdin=script)
    for line in tbf_commands(profile, down_dev=ns.host_ifname, up_dev=ns.ns_ifname):
        argv = line.split()
        _run(argv if ns.host_ifname in argv else ns.exec_argv(argv))


def destroy_namespace(ns: Namespace) -> None:
    """Remove the namespace (which removes the veth pair, its qdiscs and the nftables table). Idempotent."""
    _delete_namespace(ns.name)
    _delete_link(ns.host_ifname)
    if not os.path.exists(f"/run/netns/{ns.name}"):
        leftovers.forget(NFT, f"{ns.name} inet {NFT_TABLE}")
        leftovers.forget(NETNS, ns.name)
    if not os.path.exists(f"/sys/class/net/{ns.host_ifname}"):
        leftovers.forget(LINK, ns.host_ifname)


def _delete_namespace(name: str) -> None:
    if os.path.exists(f"/run/netns/{name}"):
        with contextlib.suppress(NetworkShapingError):
            _run(["ip", "netns", "delete", name])


def _delete_link(ifname: str) -> None:
    if os.path.exists(f"/sys/class/net/{ifname}"):
        with contextlib.suppress(NetworkShapingError):
            _run(["ip", "link", "delete", ifname])


def list_namespaces() -> list[str]:
    """Our namespaces (`harness-*`) that exist now."""
    try:
        names = os.listdir("/run/netns")
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(PREFIX))


def list_host_links() -> list[str]:
    """Host-side links named `harness-*`."""
    return sorted(n for n in os.listdir("/sys/class/net") if n.startswith(PREFIX))


def list_host_tables() -> list[str]:
    """Host nftables tables named `harness_*`, as "family name"."""
    if shutil.which("nft") is None or os.geteuid() != 0:
        return []
    out = _run(["nft", "list", "tables"])
    tables = [line.split()[1:] for line in out.splitlines() if line.startswith("table ")]
    return sorted(" ".join(t) for t in tables if len(t) == 2 and t[1].startswith("harness_"))


# ---- leftovers of killed runs --------------------------------------------------------------------------------------

NETNS, LINK, NFT = "netns", "link", "nft"
"""Kinds of recorded resources: a namespace, a host link (by name), an nftables table ("<netns> <family> <table>")."""


def _ours(name: str) -> None:
    if not name.startswith(PREFIX) or "/" in name:
        raise NetworkShapingError(f"{name!r} is not a harness namespace or link; left alone")


def _remove_netns(name: str) -> None:
    _ours(name)
    if os.path.exists(f"/run/netns/{name}"):
        check_available()
        _run(["ip", "netns", "delete", name])


def _remove_link(name: str) -> None:
    _ours(name)
    if os.path.exists(f"/sys/class/net/{name}"):
        check_available()
        _run(["ip", "link", "delete", name])


def _remove_nft(name: str) -> None:
    netns, family, table = name.split()
    _ours(netns)
    if not table.startswith("harness_") or not os.path.exists(f"/run/netns/{netns}"):
        return  # only our tables; one inside a namespace that is gone went with it
    check_available()
    if f"table {family} {table}" in _run(["ip", "netns", "exec", netns, "nft", "list", "tables"]):
        _run(["ip", "netns", "exec", netns, "nft", "delete", "table", family, table])


REMOVERS: dict[str, leftovers.Remover] = {
    NETNS: _remove_netns,
    LINK: _remove_link,
    NFT: _remove_nft,
    leftovers.DIR: leftovers.remove_dir,
}
"""Everything a harness process records, namespaces to temporary directories (this is the layer that knows all)."""


def reap() -> leftovers.Reaped:
    """Remove what dead harness processes recorded (namespaces, links, tables, temporary directories); a running
    one's are kept. Resources that cannot be removed now (not root, PostgreSQL still stopping) stay recorded."""
    return leftovers.reap(REMOVERS)


def unrecorded() -> list[str]:
    """`harness-*` namespaces, host links and host `harness_*` tables that no harness process recorded here (made
    by an older harness, another user's state directory or by hand): reported, never removed."""
    known = {(kind, name) for record in leftovers.records() for kind, name in record.resources}
    found = [f"netns {n}" for n in list_namespaces() if (NETNS, n) not in known]
    found += [f"link {n}" for n in list_host_links() if (LINK, n) not in known and (NETNS, n) not in known]
    found += [f"nft table {t}" for t in list_host_tables()]
    return found


@contextlib.contextmanager
def shaped_namespace(profile: NetworkProfile | None = None) -> Iterator[Namespace]:
    """A namespace shaped by `profile` (or unshaped), always destroyed on exit, exceptions and Ctrl-C included.
    First removes what killed runs left (`reap`), which also frees their address slots."""
    done = reap()
    if done.removed:
        log.info("kernel shaping: removed leftovers of dead harness processes: %s", ", ".join(done.removed))
    ns = create_namespace()
    try:
        if profile is not None:
            apply_profile(ns, profile)
        yield ns
    finally:
        destroy_namespace(ns)
