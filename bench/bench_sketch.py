"""Per-sample cost of the latency sketch and of ResultBuilder.record, against the `ddsketch` package.

python bench/bench_sketch.py            # ~5 s; prints µs per add
"""

from __future__ import annotations

import random
import time

from ddsketch import DDSketch

from harness.model.result import ResultBuilder
from harness.model.sketch import Sketch

N = 300_000
"""Samples per measurement."""


def per_call_us(fn, values: list[float]) -> float:
    start = time.perf_counter()
    for v in values:
        fn(v)
    return (time.perf_counter() - start) / len(values) * 1e6


def main() -> None:
    rnd = random.Random(1)
    values = [rnd.lognormvariate(4, 1) for _ in range(N)]
    print(f"ddsketch.DDSketch(0.01).add  {per_call_us(DDSketch(0.01).add, values):.3f} µs")
    print(f"harness Sketch.add           {per_call_us(Sketch().add, values):.3f} µs")
    builder = ResultBuilder(5.0)
    t0 = 1_700_000_000.0

    def record(v: float) -> None:
        builder.record("rest.messages.select", "GET", "china", v, True, t0 + v, origin_region="ap-northeast-1")

    print(f"harness ResultBuilder.record {per_call_us(record, values):.3f} µs")
    payload = builder.to_payload()
    start = time.perf_counter()
    ResultBuilder(5.0).merge(payload)
    print(f"merge of {len(payload['stats'])} stats       {(time.perf_counter() - start) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
