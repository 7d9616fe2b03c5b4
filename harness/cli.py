"""`harness` command line. It only parses, builds a config and delegates; errors become exit codes here alone.

Each command group lives beside the code it drives and exposes `register(subparsers)`, which adds its parsers
and sets `func` (a callable taking the parsed args and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from harness import __version__
from harness.errors import HarnessError

INTERRUPTED_EXIT = 130
"""Exit code after Ctrl-C (128 + SIGINT), as shells report it."""

# Command groups, in the order `--help` lists them. Adding a group is one line here.
_COMMAND_MODULES = [
    "harness.run.cli",
    "harness.run.target_cli",
    "harness.network.toxiproxy.cli",
    "harness.network.cli",
    "harness.report.cli",
    "harness.run.users_cli",
    "harness.dr.cli",
    "harness.run.drill_cli",
    "harness.backup.cli",
    "harness.deploy.k8s_cli",
    "harness.deploy.gate_cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description=(
            "Load, China-network and failover tests for the WhatsApp-style product (Supabase + LiveKit behind "
            "CloudFront). Exit codes: 0 every gate passed, 1 a gate failed, 2 invalid run or error."
        ),
    )
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Ctrl-C may come at any moment, also while the command modules import (seconds on a busy machine): one line
    # and exit 130 then too, never a traceback.
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help()
            return 2
        return int(func(args) or 0)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if exc.filename is None:
            raise  # not about a path the user gave: a bug, keep its traceback
        # A path given on the command line (a folder to write reports to, a state dir, …) cannot be used.
        print(f"harness: error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted (SIGINT)", file=sys.stderr)
        return INTERRUPTED_EXIT
