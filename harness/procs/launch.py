"""Run one piece of the reference stack in this process: `python -m harness.procs.launch PIECE [options]`.

The stack (stack.py) starts each piece as its own process through this module. When the piece listens, it
prints one line to stdout, `HARNESS_READY {"piece": ..., "port": ...}`, which is how a parent learns the port
the OS picked for port 0; everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from aiohttp import web

from harness.procs import serving

READY_PREFIX = "HARNESS_READY "


def _region_factory(args: argparse.Namespace) -> Callable[[], web.Application]:
    from harness.refstack.region.app import build_app
    from harness.refstack.region.config import RegionConfig

    config = RegionConfig(
        region=args.region,
        role=args.role,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        public_url=args.public_url,
        livekit_url=args.livekit_url,
        primary_url=args.primary_url,
        forward_writes=args.forward_writes,
        replication_lag_ms=args.replication_lag_ms,
        access_token_ttl_s=args.access_token_ttl_s,
    )
    return lambda: build_app(config)


def _livekit_factory(args: argparse.Namespace) -> Callable[[], web.Application]:
    from harness.refstack.livekit.server import build_app

    return lambda: build_app(region=args.region, join_timeout_s=args.join_timeout_s)


def _edge_factory(args: argparse.Namespace) -> Callable[[], web.Application]:
    from harness.refstack.edge.server import build_app

    origins = dict(item.split("=", 1) for item in args.origin)
    return lambda: build_app(origins=origins, health_interval_s=args.health_interval_s)


def _toxiproxy_factory(args: argparse.Namespace) -> Callable[[], web.Application]:
    from harness.network.toxiproxy.api import build_app

    return lambda: build_app(host_for_listeners=args.host)


FACTORIES: dict[str, Callable[[argparse.Namespace], Callable[[], web.Application]]] = {
    "region": _region_factory,
    "livekit": _livekit_factory,
    "edge": _edge_factory,
    "toxiproxy": _toxiproxy_factory,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness.procs.launch")
    parser.add_argument("piece", choices=sorted(FACTORIES))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--region", default="ap-southeast-1")
    parser.add_argument("--role", choices=["primary", "replica"], default="primary")
    parser.add_argument("--data-dir")
    parser.add_argument("--public-url")
    parser.add_argument("--livekit-url", default="ws://127.0.0.1:7880")
    parser.add_argument("--primary-url", help="replica: the primary whose change log it follows")
    parser.add_argument("--replication-lag-ms", type=float, default=0.0)
    parser.add_argument("--forward-writes", action="store_true", help="replica: pass client writes to the primary")
    parser.add_argument("--access-token-ttl-s", type=int, default=3600)
    parser.add_argument("--join-timeout-s", type=float, default=60.0, help="livekit: drop never-active participants")
    parser.add_argument("--origin", action="append", default=[], help="REGION=URL (edge)")
    parser.add_argument("--health-interval-s", type=float, default=1.0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    factory = FACTORIES[args.piece](args)

    def ready(port: int) -> None:
        sys.stdout.write(READY_PREFIX + json.dumps({"piece": args.piece, "port": port}) + "\n")
        sys.stdout.flush()

    serving.serve_forever(factory, args.host, args.port, on_ready=ready)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
