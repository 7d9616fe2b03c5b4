"""tune_gc: start-up's objects frozen out of later collections, and a larger young generation (in child processes,
so the test process keeps its own collector settings); every server started by serve_forever runs tuned."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import urllib.request

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


_SERVER = """
import gc
from aiohttp import web
from harness.procs import serving

async def threshold(request):
    return web.json_response({"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()})

def factory():
    app = web.Application()
    app.router.add_get("/gc", threshold)
    return app

serving.serve_forever(factory, "127.0.0.1", 0, on_ready=lambda port: print(port, flush=True))
"""


def test_every_server_started_by_serve_forever_runs_tuned() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20.0)  # bounded wait for the port line
        assert ready, "the server printed no port within 20 s"
        port = int(proc.stdout.readline())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/gc", timeout=10) as response:
            seen = json.load(response)
        assert seen["threshold"][0] == YOUNG_THRESHOLD and seen["frozen"] > 1000
    finally:
        proc.terminate()
        proc.wait(timeout=10)
