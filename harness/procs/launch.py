"""Serve one aiohttp application in this process: `python -m harness.procs.launch MODULE:FACTORY [options]`.

Every server piece (a region, the edge, the LiveKit stand-in, the embedded Toxiproxy) is started this way by
`piece.PieceProcess`. `FACTORY` is called as `FACTORY(**options)` with the `--options` JSON object and returns
the application, so this module knows none of the pieces. When the application listens, one line goes to
stdout, `HARNESS_READY {"piece": ..., "port": ...}`: that is how the parent learns the port the OS picked for
port 0; everything else goes to stderr. A piece that cannot start (a `HarnessError`, e.g. a failing migration) writes
`HARNESS_FAILED {"piece": ..., "error": ...}` instead and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from harness.errors import ConfigError, HarnessError
from harness.procs import serving

READY_PREFIX = "HARNESS_READY "
FAILED_PREFIX = "HARNESS_FAILED "
"""A piece that cannot start (e.g. a failing migration) says why on this line: the parent raises it as its own."""


def load_factory(spec: str) -> Callable[..., web.Application]:
    """`package.module:function` → the function (a ValueError names the spec when it cannot be found)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"factory {spec!r}: expected MODULE:FUNCTION, e.g. harness.refstack.edge.server:build_app")
    factory = getattr(importlib.import_module(module_name), attribute, None)
    if not callable(factory):
        raise ValueError(f"factory {spec!r}: {module_name} has no function {attribute!r}")
    return factory


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness.procs.launch")
    parser.add_argument("factory", help="MODULE:FUNCTION returning an aiohttp Application")
    parser.add_argument("--name", help="the piece's name in the ready line (default: the factory)")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--options", default="{}", help="JSON object of keyword arguments for the factory")
    return parser


SECRET_OPTIONS_ENV = "HARNESS_PIECE_SECRET_OPTIONS"
"""More factory options, as a JSON object in this environment variable: secrets (a LiveKit API secret) stay out of
the command line, which every local user can read in `ps`."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    factory = load_factory(args.factory)
    options: dict[str, Any] = json.loads(args.options)
    options.update(json.loads(os.environ.pop(SECRET_OPTIONS_ENV, "{}")))
    name = args.name or args.factory

    def ready(port: int) -> None:
        sys.stdout.write(READY_PREFIX + json.dumps({"piece": name, "port": port}) + "\n")
        sys.stdout.flush()

    try:
        serving.serve_forever(lambda: factory(**options), args.bind, args.port, on_ready=ready)
    except HarnessError as exc:
        failure = {"piece": name, "error": str(exc), "config_error": isinstance(exc, ConfigError)}
        sys.stdout.write(FAILED_PREFIX + json.dumps(failure) + "\n")
        sys.stdout.flush()
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
