"""The run's /metrics (harness/run/exporter.py) on a synthetic run folder: names, labels, and quantiles equal to
the merged sketch's, read through a real HTTP listener and prometheus-client's own parser."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from harness.loadgen import env as hs
from harness.model.profile import GatesConfig
from harness.model.result import ResultBuilder, RunInfo, dump_result
from harness.model.sketch import Sketch
from harness.run.exporter import METRIC_NAMES, MetricsServer

T0 = 1_800_000_000.0


def _run_folder(tmp_path: Path) -> tuple[Path, list[float]]:
    builder = ResultBuilder(window_s=1)
    latencies = [10.0 + i for i in range(200)]
    for i, ms in enumerate(latencies):
        builder.record("rest.read", "GET", "baseline", ms, True, T0 + i / 50, origin_region="ap-southeast-1", bytes=100)
    for i in range(10):
        builder.record("rest.read", "GET", "china", 3000.0, i > 0, T0 + i / 5, origin_region="ap-northeast-1")
    builder.record("message.delivery", "DELIVERY", "baseline", 5000.0, True, T0)
    run = RunInfo(
        run_id="r1", profile="p", started_s=T0, ended_s=T0 + 4, target="t", workers_expected=1, workers_seen=1
    )
    dump_result(builder.build(run, GatesConfig(p95_ms=2000, min_rps=False)), tmp_path / hs.SNAPSHOT_FILE)
    progress = {"state": "running", "users": 7, "workers": 1, "workers_expected": 2, "rps": 51.5, "error_pct": 0.47}
    (tmp_path / hs.PROGRESS_FILE).write_text(json.dumps({"t_s": time.time(), **progress}), encoding="utf-8")
    return tmp_path, latencies


def _scrape(tmp_path: Path) -> dict[str, list[tuple[dict[str, str], float]]]:
    server = MetricsServer(tmp_path, "127.0.0.1", 0, {"run_id": "r1", "profile": "p"})
    try:
        text = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10).text
    finally:
        server.stop()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _one(samples: dict[str, list[tuple[dict[str, str], float]]], metric: str, **labels: str) -> float:
    [value] = [v for got, v in samples[metric] if all(got.get(k) == x for k, x in labels.items())]
    return value


def test_metrics_carry_progress_counts_sketch_quantiles_regions_and_gates(tmp_path: Path) -> None:
    folder, latencies = _run_folder(tmp_path)
    samples = _scrape(folder)
    assert _one(samples, "harness_run_info", run_id="r1", profile="p") == 1
    assert _one(samples, "harness_run_state", state="running") == 1
    assert _one(samples, "harness_run_state", state="finished") == 0
    assert _one(samples, "harness_users") == 7 and _one(samples, "harness_workers_expected") == 2
    assert _one(samples, "harness_requests_per_second") == 51.5
    assert _one(samples, "harness_requests_total", group="baseline", name="rest.read") == 200
    assert _one(samples, "harness_request_failures_total", group="china", name="rest.read") == 1
    assert _one(samples, "harness_request_bytes_total", group="baseline", name="rest.read") == 20_000
    assert _one(samples, "harness_origin_responses_total", group="china", origin="ap-northeast-1") == 10

    sketch = Sketch()
    for ms in latencies:
        sketch.add(ms)
    p95 = _one(samples, "harness_request_latency_seconds", group="baseline", name="rest.read", quantile="0.95")
    assert p95 == sketch.quantile(0.95) / 1000  # the merged sketch's own value
    assert abs(p95 - 0.2) <= 0.2 * _one(samples, "harness_latency_relative_error") + 0.0105  # true p95 ≈ 200 ms
    # The overall p95 leaves the 5 s delivery out, as the p95 gate does; 9 china requests at 3 s are in.
    assert 2.9 < _one(samples, "harness_latency_seconds", quantile="0.99") < 3.1
    assert _one(samples, "harness_gate_passed", gate="p95") == 1.0
    assert _one(samples, "harness_gate_threshold", gate="p95", unit="ms") == 2000


def test_every_family_is_listed_and_a_folder_without_files_still_answers(tmp_path: Path) -> None:
    full = _scrape(_run_folder(tmp_path)[0])
    emitted = {name.removesuffix("_total").removesuffix("_info") for name in full}
    assert emitted == set(METRIC_NAMES)  # METRIC_NAMES is what the dashboard test checks against

    empty = tmp_path / "empty"
    empty.mkdir()
    samples = _scrape(empty)  # before the master has written anything: info and state only
    assert _one(samples, "harness_run_state", state="starting") == 1
    assert "harness_requests_total" not in samples
