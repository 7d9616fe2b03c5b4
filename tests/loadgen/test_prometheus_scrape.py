"""A real Prometheus (Debian's package) scrapes a real run's /metrics and answers PromQL through its HTTP API."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from loadgen_helpers import REST_READ, harness_argv, write_profile

from harness.loadgen.cluster import free_port

PROMETHEUS = shutil.which("prometheus")
DEADLINE_S = 90.0


def _query(api: str, promql: str) -> list[dict]:  # type: ignore[type-arg]
    try:
        reply = httpx.get(f"{api}/api/v1/query", params={"query": promql}, timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return []
    return list(reply.get("data", {}).get("result", [])) if reply.get("status") == "success" else []


@pytest.mark.slow
@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus (Debian package, installed by scripts/install)")
def test_prometheus_scrapes_a_live_run(tmp_path: Path, stack_env_file: Path) -> None:
    metrics_port, prom_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: harness\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{metrics_port}']\n",
        encoding="utf-8",
    )
    prometheus = subprocess.Popen(
        [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    profile = write_profile(tmp_path / "scraped.toml", duration_s=20, extra="[gates]\nmin_rps = false\n")
    run = subprocess.Popen(
        harness_argv("run", str(profile), "--env-file", str(stack_env_file), "--workers", "1",
                     "--locustfile", str(REST_READ), "--reports-dir", str(tmp_path), "--run-id", "scraped",
                     "--metrics-port", str(metrics_port)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    api = f"http://127.0.0.1:{prom_port}"
    requests: list[dict] = []  # type: ignore[type-arg]
    p95: list[dict] = []  # type: ignore[type-arg]
    try:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline and not (requests and p95) and run.poll() is None:
            time.sleep(1)
            requests = _query(api, 'sum(harness_requests_total{job="harness"})')
            p95 = _query(api, 'harness_latency_seconds{quantile="0.95"}')
        state = _query(api, 'harness_run_state{state="running"} == 1')
    finally:
        _, err = run.communicate(timeout=120)
        prometheus.terminate()
        prometheus.wait(timeout=30)
    assert run.returncode == 0, err[-3000:]
    assert f"metrics on http://127.0.0.1:{metrics_port}/metrics" in err
    assert requests and float(requests[0]["value"][1]) > 0, "Prometheus never stored a request count"
    assert p95 and 0 < float(p95[0]["value"][1]) < 2, p95
    assert state and state[0]["metric"]["job"] == "harness"
