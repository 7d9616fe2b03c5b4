"""A real Prometheus (Debian's, installed by scripts/install) scrapes a short real run's /metrics and answers
PromQL about it through its HTTP API: the request counter equals result.json's count, a quantile gauge equals the
run's sketch, the run was seen running and then finished with its verdict."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from loadgen_helpers import REST_READ, harness_argv, write_profile

from harness.loadgen.cluster import free_port
from harness.model.result import aggregate, load_result

PROMETHEUS = shutil.which("prometheus")
READY_WAIT_S = 60.0


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """(API base URL, the metrics port it scrapes every second) for a fresh Prometheus on loopback."""
    if PROMETHEUS is None:
        pytest.skip("the prometheus binary is not installed (scripts/install adds Debian's prometheus package)")
    metrics_port, web_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        f"scrape_configs:\n  - job_name: harness\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n",
        encoding="utf-8",
    )
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{web_port}", "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{web_port}"
    try:
        deadline = time.monotonic() + READY_WAIT_S
        while True:
            assert proc.poll() is None, f"prometheus exited with {proc.returncode}; see {log.name}"
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"prometheus not ready within {READY_WAIT_S:.0f} s; see {log.name}"
            time.sleep(0.1)
        yield url, metrics_port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _query(url: str, promql: str) -> list[dict[str, object]]:
    reply = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert reply["status"] == "success", reply
    return reply["data"]["result"]  # type: ignore[no-any-return]


def _of(request: str, quantile: float | None = None) -> str:
    """The label matchers of one request of the run's single group."""
    q = f',quantile="{quantile:g}"' if quantile is not None else ""
    return f'{{job="harness",group="baseline",type="GET",request="{request}"{q}}}'


def _one(url: str, promql: str) -> float:
    result = _query(url, promql)
    assert len(result) == 1, (promql, result)
    return float(result[0]["value"][1])  # type: ignore[index]


@pytest.mark.slow
def test_a_real_prometheus_scrapes_a_live_run(
    tmp_path: Path, stack_env_file: Path, prometheus: tuple[str, int]
) -> None:
    url, metrics_port = prometheus
    profile = write_profile(tmp_path / "scraped.toml", duration_s=5, extra="[gates]\nmin_rps = false\n")
    done = subprocess.run(
        harness_argv(
            "run", str(profile), "--env-file", str(stack_env_file), "--workers", "1", "--locustfile", str(REST_READ),
            "--reports-dir", str(tmp_path), "--run-id", "scraped",
            "--metrics-port", str(metrics_port), "--metrics-linger", "60s",
        ),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    assert f"metrics on http://127.0.0.1:{metrics_port}/metrics" in done.stderr
    assert "the final state was scraped" in done.stderr  # the linger ended at Prometheus' scrape, not its bound

    result = load_result(tmp_path / "scraped" / "result.json")
    reads = aggregate(result.windows, names={"REST select conversations"})
    health = aggregate(result.windows, names={"health"})
    # The series are stale now (the run is over): last_over_time reads the last scrape, the finished state's.
    counted = _one(url, f"last_over_time(harness_requests_total{_of('health')}[10m])")
    assert counted == health.count > 0
    p95 = _one(url, f"last_over_time(harness_request_latency_seconds{_of('REST select conversations', 0.95)}[10m])")
    assert p95 == reads.sketch.quantile(0.95) / 1000  # the whole 5 s run is inside the 30 s recent span
    assert _one(url, "max_over_time(harness_run_state{state='running'}[10m])") == 1  # scraped while live
    assert _one(url, "last_over_time(harness_run_state{state='finished'}[10m])") == 1
    assert _one(url, "last_over_time(harness_verdict{verdict='passed'}[10m])") == 1
    assert _one(url, "last_over_time(harness_gate_status{gate='error_rate'}[10m])") == 1
    info = _query(url, "last_over_time(harness_run_info[10m])")
    assert [r["metric"]["run_id"] for r in info] == ["scraped"]  # type: ignore[index]
