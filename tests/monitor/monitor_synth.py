"""A synthetic but real live snapshot: samples recorded by a ResultBuilder (as a worker does), shipped as a worker
payload into the master's LiveTally, written as the master's progress.json, read by a RunMonitor."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from harness.gates.verdict import Verdict, evaluate
from harness.model.live import LiveTally
from harness.model.metrics import DELIVERY_NAME, MEETING_JOIN_NAME, REORDERED_NAME
from harness.model.profile import GatesConfig
from harness.model.result import ResultBuilder, RunInfo
from harness.model.sketch import Sketch
from harness.monitor.families import render
from harness.monitor.state import RunMonitor

WINDOW_S = 5.0
NOW_S = 1_700_000_100.0
OLD_S = NOW_S - 300  # long before the recent span: in the totals, not in the quantiles
JAPAN, SINGAPORE = "ap-northeast-1", "ap-southeast-1"


@dataclass
class Synth:
    builder: ResultBuilder
    recent: dict[tuple[str, str], Sketch] = field(default_factory=dict)
    """(group, request name) → the successful recent samples, as a sketch of their own."""

    def record(self, name: str, rtype: str, group: str, ms: float, t_s: float = NOW_S - 2, **kw: object) -> None:
        ok = kw.pop("ok", True)
        self.builder.record(name, rtype, group, ms, bool(ok), t_s, **kw)  # type: ignore[arg-type]
        if ok and t_s > NOW_S - 30:
            self.recent.setdefault((group, name), Sketch()).add(ms)


def synth() -> Synth:
    rng = random.Random(7)
    s = Synth(ResultBuilder(window_s=WINDOW_S, worker="worker-1"))
    for _ in range(200):
        s.record("home", "GET", "baseline", rng.lognormvariate(4, 0.8), origin_region=SINGAPORE)
    for _ in range(50):
        s.record("home", "GET", "baseline", 9000.0, t_s=OLD_S, origin_region=SINGAPORE)  # old and slow
    for kind in ("error", "error", "timeout"):
        s.record("home", "GET", "baseline", 30.0, ok=False, failure_kind=kind, origin_region=SINGAPORE)
    for i in range(40):
        origin = JAPAN if i % 5 else SINGAPORE  # 32 of 40 via Japan
        s.record("select messages", "REST", "china", rng.lognormvariate(5, 0.5), origin_region=origin)
    for _ in range(10):
        s.record("upload", "STORAGE", "china", 400.0, bytes=20, wait_ms=350.0, connect_ms=None, body_ms=50.0,
                 sent_bytes=100_000, origin_region=JAPAN)  # fmt: skip
        s.record("download", "STORAGE", "china", 200.0, bytes=100_000, origin_region=JAPAN)
    for _ in range(30):
        s.record(DELIVERY_NAME, "DELIVERY", "china", rng.uniform(50, 900))
    s.record(DELIVERY_NAME, "DELIVERY", "china", 5000.0, ok=False, failure_kind="lost")
    s.record(DELIVERY_NAME, "DELIVERY", "china", 60.0, ok=False, failure_kind="duplicate")
    s.record(REORDERED_NAME, "DELIVERY", "china", 0.0)
    for _ in range(5):
        s.record(MEETING_JOIN_NAME, "MEETING", "baseline", rng.uniform(100, 400))
    return s


def progress_of(s: Synth, state: str = "running") -> dict[str, object]:
    tally = LiveTally(WINDOW_S)
    tally.snapshot(NOW_S - 2)  # the master's previous second: gives a rate
    tally.absorb(s.builder.to_payload(), now_s=NOW_S)
    return {"t_s": NOW_S, "state": state, "users": 12, "workers": 2, "workers_expected": 2,
            "live": tally.snapshot(NOW_S)}  # fmt: skip


def verdict_of(s: Synth) -> Verdict:
    run = RunInfo(run_id="r", profile="p", started_s=OLD_S, ended_s=NOW_S, target="t", workers_expected=1,
                  workers_seen=1)  # fmt: skip
    return evaluate(s.builder.build(run, GatesConfig(p95_ms=2000, max_error_pct=5)))


def monitor_with(s: Synth, tmp_path: Path, state: str = "running") -> RunMonitor:
    path = tmp_path / "progress.json"
    path.write_text(json.dumps(progress_of(s, state)), encoding="utf-8")
    monitor = RunMonitor()
    monitor.begin("load-20240101-000000-abcd", "load", "http://127.0.0.1:54320", path)
    return monitor


def exposition(monitor: RunMonitor) -> str:
    return render(monitor.view())[0].decode()


def samples(text: str) -> list[Sample]:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(text: str, name: str, **labels: str) -> float:
    found = [s.value for s in samples(text) if s.name == name and s.labels == labels]
    assert len(found) == 1, (name, labels, [s for s in samples(text) if s.name == name])
    return found[0]
