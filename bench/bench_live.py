"""Cost of the live figures behind /metrics (harness/model/live.py) over a one-hour run, against the alternative
of serving them from a full-result snapshot (snapshot.json, as `harness capacity` does).

python bench/bench_live.py            # ~1 min; prints ms per call and sizes

The synthetic run: 4 workers each report 750 requests every 3 s (1,000 req/s), over 20 request names in 2 groups
(40 keys), lognormal latencies, for one hour (1,200 reports per worker), 5 s windows.
"""

from __future__ import annotations

import json
import random
import time

from harness.model.live import Live, LiveTally
from harness.model.result import ResultBuilder, RunInfo, parse_result

T0 = 1_700_000_000.0
REPORTS = 1200
WORKERS = 4
PER_REPORT = 750


def main() -> None:
    rng = random.Random(1)
    keys = [(f"req{i}", "GET" if i % 2 else "REST") for i in range(20)]
    tally = LiveTally(5)
    master = ResultBuilder(window_s=5, worker="master")
    absorb_s = snapshot_s = 0.0
    snapshots = 0
    text = ""
    for step in range(REPORTS):
        now = T0 + step * 3
        for w in range(WORKERS):
            b = ResultBuilder(window_s=5, worker=f"w{w}")
            for _ in range(PER_REPORT):
                name, rtype = rng.choice(keys)
                b.record(name, rtype, rng.choice(("baseline", "china")), rng.lognormvariate(4, 1),
                         rng.random() > 0.01, now + rng.random() * 3, origin_region="ap-southeast-1")  # fmt: skip
            payload = b.to_payload()
            master.merge(payload)
            start = time.perf_counter()
            tally.absorb(payload, now)
            absorb_s += time.perf_counter() - start
        for k in range(3):  # the master writes progress.json every second
            start = time.perf_counter()
            text = json.dumps(tally.snapshot(now + k))
            snapshot_s += time.perf_counter() - start
            snapshots += 1
    start = time.perf_counter()
    Live.from_progress({"live": json.loads(text)})
    parse_s = time.perf_counter() - start
    print(f"live: absorb {absorb_s / (REPORTS * WORKERS) * 1e3:.2f} ms per worker report, snapshot + JSON "
          f"{snapshot_s / snapshots * 1e3:.2f} ms per second, {len(text) / 1e3:.0f} kB, read by the orchestrator "
          f"{parse_s * 1e3:.1f} ms")  # fmt: skip
    run = RunInfo(run_id="b", profile="p", started_s=T0, ended_s=T0 + REPORTS * 3, target="t", workers_expected=4,
                  workers_seen=4)  # fmt: skip
    start = time.perf_counter()
    full = master.build(run).model_dump_json()
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    parse_result(full)
    read_s = time.perf_counter() - start
    print(f"full snapshot after 1 h: build + JSON {build_s * 1e3:.0f} ms, {len(full) / 1e6:.1f} MB, read "
          f"{read_s * 1e3:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
