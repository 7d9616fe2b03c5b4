"""tune_gc: start-up's objects frozen out of later collections, and a larger young generation (in a child process,
so the test process keeps its own collector settings)."""

from __future__ import annotations

import json
import subprocess
import sys

from harness.procs.gctune import YOUNG_THRESHOLD

_CHILD = """
import gc, json
from harness.procs.gctune import tune_gc
before = (gc.get_threshold(), gc.get_freeze_count())
tune_gc()
print(json.dumps([before, (gc.get_threshold(), gc.get_freeze_count())]))
"""


def test_tune_gc_freezes_start_up_and_raises_the_young_threshold() -> None:
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True, timeout=60)
    (before_threshold, before_frozen), (after_threshold, after_frozen) = json.loads(out.stdout)
    assert before_threshold[0] < YOUNG_THRESHOLD and before_frozen == 0
    assert after_threshold == [YOUNG_THRESHOLD, before_threshold[1], before_threshold[2]]
    assert after_frozen > 1000  # the imported modules' objects
