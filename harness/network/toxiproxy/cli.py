"""`harness toxiproxy serve`: run the embedded Toxiproxy-compatible server in the foreground."""

from __future__ import annotations

import argparse

from harness.network.toxiproxy.api import build_app
from harness.procs import serving

DEFAULT_PORT = 8474
"""Toxiproxy's API port, which its clients (toxiproxy-python included) assume."""


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("toxiproxy", help="embedded Toxiproxy-compatible fault proxy")
    commands = group.add_subparsers(title="toxiproxy commands", metavar="COMMAND")
    serve = commands.add_parser(
        "serve", help="serve the Toxiproxy 2.x HTTP API until Ctrl-C (proxies listen on --bind as well)"
    )
    serve.add_argument("--bind", default="127.0.0.1", help="address for the API and for proxies (default %(default)s)")
    serve.add_argument("--host", dest="bind", help=argparse.SUPPRESS)  # toxiproxy-server's own name for it
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="API port, 0 = any free (default %(default)s)")
    serve.set_defaults(func=run_serve)
    group.set_defaults(func=lambda args: group.print_help() or 2)


def run_serve(args: argparse.Namespace) -> int:
    host: str = args.bind

    def ready(port: int) -> None:
        print(f"toxiproxy API listening on http://{host}:{port}", flush=True)

    serving.serve_forever(lambda: build_app(host_for_listeners=host), host, args.port, on_ready=ready)
    return 0
