"""argparse value types shared by the command groups: a wrong value is argparse's exit 2 with the value and the
expected form."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from harness.model.limits import too_large

Number = TypeVar("Number", int, float)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number (e.g. 30)")
    return value


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number (e.g. 2)")
    return int(text)


def non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0 (e.g. 100)")
    return int(text)


def at_most(parse: Callable[[str], Number], limit: float, shown: str) -> Callable[[str], Number]:
    """`parse`, then refuse a value above `limit` (model/limits.py: a typo's size; HARNESS_LIMITS=off lifts it)."""

    def check(text: str) -> Number:
        value = parse(text)
        message = too_large(text, value, limit, shown)
        if message is not None:
            raise argparse.ArgumentTypeError(message)
        return value

    return check
