"""Render a (stacked) network profile three ways. Pure functions: no I/O, no processes.

1. `toxiproxy_toxics`  Toxiproxy toxic JSON dicts: latency (both directions), bandwidth, stalls, resets.
                       Toxiproxy cannot drop packets, so loss is never in this rendering.
2. `netem_commands`    `tc qdisc … netem` lines for kernels that have sch_netem: the full profile, loss downstream.
3. `nftables_script` + `tbf_commands`   this machine's fallback (no sch_netem): nftables random drop for loss,
                       tc tbf for rate. Latency and faults then come from Toxiproxy.

Directions: "downstream" is server → user (the side China's congestion hits), "upstream" user → server.
"""

from __future__ import annotations

import math
from typing import Any

from harness.network.profiles import Fault, NetworkProfile

KBPS_PER_KBYTE_S = 8
"""Toxiproxy's `bandwidth.rate` is KB/s with 1 KB = 1000 bytes, so 1 Mbps = 1000 kbps = 125 KB/s."""

PACKET_BYTES = 1514
"""A full Ethernet frame: the tbf bucket holds at least two."""

TBF_LATENCY_MS = 100
"""How long a packet may queue in tbf before it is dropped: a modest bottleneck buffer, not bufferbloat."""

NFT_MODULUS = 1000
"""`numgen random mod 1000 < N`: loss resolution is 0.1 %."""

_TOXIC_TYPE = {"stall": "timeout", "reset": "reset_peer"}


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def _toxic(name: str, type_: str, stream: str, toxicity: float, attributes: dict[str, int]) -> dict[str, Any]:
    return {"name": name, "type": type_, "stream": stream, "toxicity": toxicity, "attributes": attributes}


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def toxiproxy_toxics(profile: NetworkProfile) -> list[dict[str, Any]]:
    """Toxic envelopes `{name,type,stream,toxicity,attributes}` in Toxiproxy's wire format, in apply order.

    Latency and jitter are whole milliseconds (Toxiproxy's unit), rounded half up; one-way in each direction.
    Names follow Toxiproxy's `<type>_<stream>` default, with `_2`, `_3` … when a stack repeats a type.
    """
    toxics: list[dict[str, Any]] = []
    taken: set[str] = set()
    latency_ms = _round_half_up(profile.latency.one_way_ms)
    jitter_ms = _round_half_up(profile.latency.jitter_ms)
    if latency_ms or jitter_ms:
        for stream in ("downstream", "upstream"):
            attributes = {"latency": latency_ms, "jitter": jitter_ms}
            toxics.append(_toxic(_unique(f"latency_{stream}", taken), "latency", stream, 1.0, attributes))
    for stream, rate in (("downstream", profile.bandwidth.down_kbps), ("upstream", profile.bandwidth.up_kbps)):
        if rate is not None:
            rate_kbyte_s = max(1, _round_half_up(rate.value / KBPS_PER_KBYTE_S))
            toxics.append(
                _toxic(_unique(f"bandwidth_{stream}", taken), "bandwidth", stream, 1.0, {"rate": rate_kbyte_s})
            )
    for fault in profile.faults:
        toxics.append(_fault_toxic(fault, taken))
    return toxics


def _fault_toxic(fault: Fault, taken: set[str]) -> dict[str, Any]:
    type_ = _TOXIC_TYPE[fault.kind]
    name = _unique(f"{type_}_{fault.stream}", taken)
    return _toxic(name, type_, fault.stream, fault.toxicity.value, {"timeout": _round_half_up(fault.duration_ms)})


# ---------------------------------------------------------------- tc netem


def _fmt(value: float) -> str:
    """Numbers as tc writes them: no trailing zeros (`105`, `0.5`, `2.2`)."""
    return f"{round(value, 4):g}"


def netem_arguments(profile: NetworkProfile, stream: str) -> str:
    """The netem option string for one direction (`delay … loss … rate …`); loss only downstream."""
    parts: list[str] = []
    lat = profile.latency
    if lat.one_way_ms or lat.jitter_ms:
        delay = f"delay {_fmt(lat.one_way_ms)}ms"
        if lat.jitter_ms:
            delay += f" {_fmt(lat.jitter_ms)}ms"
            if lat.distribution:
                delay += f" distribution {lat.distribution}"
        parts.append(delay)
    loss = profile.loss
    if stream == "downstream" and loss.model == "bernoulli" and loss.percent.value > 0:
        parts.append(f"loss random {_fmt(loss.percent.value)}%")
    if stream == "downstream" and loss.gilbert_elliott is not None:
        ge = loss.gilbert_elliott
        values = (ge.p.value, ge.r.value, ge.one_minus_h.value, ge.one_minus_k.value)
        parts.append("loss gemodel " + " ".join(f"{_fmt(v)}%" for v in values))
    rate = profile.bandwidth.down_kbps if stream == "downstream" else profile.bandwidth.up_kbps
    if rate is not None:
        parts.append(f"rate {_fmt(rate.value)}kbit")
    return " ".join(parts)


def netem_commands(profile: NetworkProfile, down_dev: str = "$DOWN_DEV", up_dev: str = "$UP_DEV") -> list[str]:
    """`tc qdisc replace … netem` lines: `down_dev` carries server → user traffic, `up_dev` user → server."""
    lines = []
    for stream, dev in (("downstream", down_dev), ("upstream", up_dev)):
        args = netem_arguments(profile, stream)
        if args:
            lines.append(f"tc qdisc replace dev {dev} root netem {args}")
    return lines


# ---------------------------------------------------------------- nftables + tbf fallback


def _permille(percent: float) -> int:
    return _round_half_up(percent * NFT_MODULUS / 100)


def nftables_script(profile: NetworkProfile, ifname: str, table: str = "harness_shaping") -> str:
    """An `nft -f` script dropping downstream packets arriving on `ifname` (the user side's interface).

    Dropping on the *receiving* side's ingress makes the loss look like the network's: the sender's TCP stack sees
    a missing ACK, not a local send error. Bernoulli: one `numgen random` rule. Gilbert–Elliott: per packet, as
    netem does it: a one-element set holds the state (present = bad), the packet mark remembers the state the
    packet arrived in, the transition is rolled (`add`/`delete @ge_bad` from the packet path), then the loss is
    rolled with the old state's probability. The mark is scratch space private to the namespace.
    Returns an empty string when the profile has no loss.
    """
    loss = profile.loss
    if loss.model == "none" or loss.percent.value <= 0:
        return ""
    match = f'iifname "{ifname}"'
    rand = f"numgen random mod {NFT_MODULUS}"
    lines = [f"table inet {table} {{"]
    rules: list[str] = []
    ge = loss.gilbert_elliott
    if ge is None:
        rules.append(f"{match} {rand} < {_permille(loss.percent.value)} counter drop")
    else:
        # A state element deleted from the packet path lingers until the set's garbage collector runs, and a re-add
        # of the same key meanwhile fails (measured: steady state 12% instead of 14.7%). A 1 ms GC interval (which
        # needs the timeout flag; the 1 h timeout never matters) makes re-entry work: measured 15.1%.
        lines.append("  set ge_bad { type ifname; flags dynamic,timeout; timeout 1h; gc-interval 1ms; }")
        rules += [
            f"{match} meta mark set 0x0",
            f"{match} iifname @ge_bad meta mark set 0x1",
            f"{match} meta mark 0x1 {rand} < {_permille(ge.r.value)} delete @ge_bad {{ iifname }}",
            f"{match} meta mark 0x0 {rand} < {_permille(ge.p.value)} add @ge_bad {{ iifname }}",
            f"{match} meta mark 0x1 {rand} < {_permille(ge.one_minus_h.value)} counter drop",
            f"{match} meta mark 0x0 {rand} < {_permille(ge.one_minus_k.value)} counter drop",
        ]
    lines.append("  chain prerouting {")
    lines.append("    type filter hook prerouting priority raw; policy accept;")
    lines += [f"    {rule}" for rule in rules]
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def tbf_burst_bytes(rate_kbps: float) -> int:
    """Bucket size: two full packets, or 10 ms of traffic at the rate, whichever is larger."""
    return max(2 * PACKET_BYTES, _round_half_up(rate_kbps * 1000 / 8 / 100))


def tbf_commands(profile: NetworkProfile, down_dev: str = "$DOWN_DEV", up_dev: str = "$UP_DEV") -> list[str]:
    """`tc qdisc replace … tbf` lines; `down_dev` is the egress towards the user, `up_dev` towards the server."""
    lines = []
    for rate, dev in ((profile.bandwidth.down_kbps, down_dev), (profile.bandwidth.up_kbps, up_dev)):
        if rate is not None:
            lines.append(
                f"tc qdisc replace dev {dev} root tbf rate {_fmt(rate.value)}kbit "
                f"burst {tbf_burst_bytes(rate.value)} latency {TBF_LATENCY_MS}ms"
            )
    return lines


def render_all(profile: NetworkProfile) -> dict[str, Any]:
    """All three renderings with symbolic device names, for `harness net show` and golden tests."""
    return {
        "profile": profile.name,
        "toxiproxy": toxiproxy_toxics(profile),
        "netem": netem_commands(profile),
        "nftables": nftables_script(profile, "$USER_IF"),
        "tbf": tbf_commands(profile),
        "not_rendered": not_rendered(profile),
    }


def not_rendered(profile: NetworkProfile) -> list[str]:
    """What the profile says that no rendering applies, so a reader never mistakes it for applied."""
    notes = []
    if profile.nat_idle_timeout is not None:
        notes.append(
            f"nat_idle_timeout_s = {_fmt(profile.nat_idle_timeout.value)}: clients must send heartbeats more often "
            "(checked by scenario config, not shaped)"
        )
    notes += [f"event {e.name}: {e.description} (drive it from a fault drill)" for e in profile.events]
    return notes
