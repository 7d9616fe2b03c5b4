"""Fewer cyclic garbage collections in the long-running processes that carry load (the stack's servers, Locust
workers).

CPython collects its youngest generation every 700 net container allocations, and a request allocates hundreds:
under load the region spent about 5 % of its CPU in the collector (one `py-spy --native` sample, which pauses the
process, so a rough figure; docs/BENCHMARKS.md) rescanning objects that live for the whole process. `gc.freeze()`
moves what start-up built (modules, routes, pools) out of every later scan, and a larger young threshold makes
collections rarer; reference counting still frees everything that is not in a cycle at once, so memory is unchanged
but for cycles, which wait a little longer.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
"""Net container allocations between young collections (CPython's default: 700)."""


def tune_gc() -> None:
    """Call once start-up is over, before the load."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
