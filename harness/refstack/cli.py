"""`harness target ...`: run the embedded reference stack."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    target = subparsers.add_parser("target", help="run the embedded reference stack (the default target)")
    target.set_defaults(func=lambda _args: target.print_help() or 2)
