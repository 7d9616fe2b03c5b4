"""`harness net`: list, show, apply and clear network profiles. Parses, then delegates."""

from __future__ import annotations

import argparse
import json

from harness.errors import NetworkShapingError
from harness.network import kernel
from harness.network.profiles import NetworkProfile, Sourced, list_profiles, load_profile, load_stack
from harness.network.render import render_all, toxiproxy_toxics
from harness.network.toxiproxy_client import DEFAULT_URL, ToxiproxyClient
from harness.procs import leftovers


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    net = subparsers.add_parser("net", help="network condition profiles (netem/*.toml): list, show, apply, clear")
    sub = net.add_subparsers(title="net commands", metavar="NET_COMMAND")

    def usage(args: argparse.Namespace) -> int:
        net.print_help()
        return 2

    net.set_defaults(func=usage)

    p = sub.add_parser("list", help="list the profiles in netem/")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="print a (stacked) profile with every value's source and its three renderings")
    p.add_argument("name", help="profile name (netem/NAME.toml) or path to a .toml file")
    p.add_argument("--overlay", action="append", default=[], metavar="X", help="stack an overlay (repeatable)")
    p.add_argument("--json", action="store_true", help="print the renderings as JSON only")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("apply", help="apply a profile's toxics to Toxiproxy proxies (replacing their toxics)")
    p.add_argument("name")
    p.add_argument("--overlay", action="append", default=[], metavar="X")
    p.add_argument("--toxiproxy", default=DEFAULT_URL, metavar="URL", help=f"Toxiproxy API (default {DEFAULT_URL})")
    p.add_argument("--proxy", action="append", required=True, metavar="NAME", help="proxy to shape (repeatable)")
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser(
        "clear", help="remove every toxic from Toxiproxy; --kernel also removes what killed harness runs left behind"
    )
    p.add_argument("--toxiproxy", default=DEFAULT_URL, metavar="URL")
    p.add_argument(
        "--kernel",
        action="store_true",
        help="also remove the namespaces, veths, nft tables and temporary directories of harness runs that died "
        "(kill -9) without cleaning up; those of running ones are kept (works without a Toxiproxy)",
    )
    p.set_defaults(func=cmd_clear)


def cmd_list(args: argparse.Namespace) -> int:
    for name in list_profiles():
        profile = load_profile(name)
        kind = "overlay" if profile.overlay else "path"
        print(f"{name:32} {kind:8} {profile.description}")
    return 0


def _value(label: str, sourced: Sourced | None, unit: str) -> str:
    if sourced is None:
        return f"  {label:22} unlimited"
    shown = f"{sourced.value:g} {unit}"
    return f"  {label:22} {shown:14} ← {sourced.source}"


def describe(profile: NetworkProfile) -> list[str]:
    """The profile as text, one value per line with its source."""
    lat, loss, bw = profile.latency, profile.loss, profile.bandwidth
    lines = [f"{profile.name}: {profile.description}", "latency (each direction):"]
    lines.append(_value("one_way_ms", lat.one_way, "ms"))
    lines.append(_value("jitter_ms", lat.jitter, "ms"))
    if lat.distribution:
        lines.append(f"  {'distribution':22} {lat.distribution:14} ← {lat.distribution_source}")
    lines.append(f"loss (downstream only): {loss.model} ← {loss.model_source}")
    if loss.model != "none":
        lines.append(_value("percent (steady state)", loss.percent, "%"))
    if loss.gilbert_elliott:
        ge = loss.gilbert_elliott
        for label, sourced in (("p", ge.p), ("r", ge.r), ("1-h", ge.one_minus_h), ("1-k", ge.one_minus_k)):
            lines.append(_value(label, sourced, "%"))
    lines += ["bandwidth:", _value("down_kbps", bw.down_kbps, "kbps"), _value("up_kbps", bw.up_kbps, "kbps")]
    for fault in profile.faults:
        lines.append(f"fault {fault.kind} ({fault.stream}):")
        lines.append(_value("toxicity", fault.toxicity, "share"))
        lines.append(_value("duration_ms", fault.duration, "ms"))
    if profile.nat_idle_timeout is not None:
        lines.append(_value("nat_idle_timeout_s", profile.nat_idle_timeout, "s"))
    for event in profile.events:
        lines.append(f"event {event.name}: {event.description} ← {event.source}")
    return lines


def cmd_show(args: argparse.Namespace) -> int:
    profile = load_stack(args.name, args.overlay)
    rendered = render_all(profile)
    if args.json:
        print(json.dumps(rendered, indent=2, ensure_ascii=False))
        return 0
    print("\n".join(describe(profile)))
    print("\n# Toxiproxy toxics (latency, bandwidth, faults; Toxiproxy cannot drop packets)")
    print(json.dumps(rendered["toxiproxy"], indent=2))
    print("\n# tc netem (kernels with sch_netem; $DOWN_DEV carries server→user traffic)")
    print("\n".join(rendered["netem"]) or "(nothing to apply)")
    print("\n# fallback without netem: nftables loss on the user side's ingress ($USER_IF) + tbf rate")
    print((rendered["nftables"] or "(no loss)\n") + ("\n".join(rendered["tbf"]) or "(no rate cap)"))
    if rendered["not_rendered"]:
        print("\n# not applied by any rendering")
        print("\n".join(rendered["not_rendered"]))
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    profile = load_stack(args.name, args.overlay)
    toxics = toxiproxy_toxics(profile)
    with ToxiproxyClient(args.toxiproxy) as client:
        for proxy in args.proxy:
            client.clear_toxics(proxy)
            for toxic in toxics:
                client.add_toxic(proxy, toxic)
    print(f"applied {len(toxics)} toxic(s) of {profile.name} to {', '.join(args.proxy)}; undo: harness net clear")
    if profile.loss.model != "none":
        print(f"note: Toxiproxy cannot drop packets; the profile's {profile.loss.percent.value:g}% loss needs kernel")
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    with ToxiproxyClient(args.toxiproxy) as client:
        if args.kernel and not client.reachable():
            print(f"no Toxiproxy answers at {args.toxiproxy}: no toxics to remove")
        else:
            proxies = client.proxies()
            for name in proxies:
                client.clear_toxics(name)
            print(f"removed all toxics from {len(proxies)} proxies")
    if args.kernel:
        kernel.check_available()
        clear_kernel()
    return 0


def clear_kernel() -> None:
    """Reap the leftovers of dead harness processes; say what was kept and why. NetworkShapingError when some of
    them could not be removed (they stay recorded for the next try)."""
    done = kernel.reap()
    where = leftovers.state_dir()
    if done.removed:
        print(f"removed what dead harness runs left behind: {', '.join(done.removed)}")
    else:
        print(f"no leftovers of dead harness runs (recorded in {where})")
    if done.live:
        print(f"kept (their harness run is still going): {', '.join(done.live)}")
    strangers = kernel.unrecorded()
    if strangers:
        print(
            f"left alone (recorded by no harness run in {where}): {', '.join(strangers)}; if nothing uses one, "
            "remove it with `ip netns delete NAME`, `ip link delete NAME` or `nft delete table FAMILY NAME`"
        )
    if done.failed:
        raise NetworkShapingError(
            f"could not remove {len(done.failed)} leftover(s), kept for the next `harness net clear --kernel`: "
            + "; ".join(done.failed)
        )
