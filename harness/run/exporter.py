"""The run's live metrics for Prometheus: `/metrics` on --metrics-bind:--metrics-port while the run goes on.

Served by the orchestrator, not inside the Locust master: the master already writes what is needed every second
(progress.json) and every few seconds (snapshot.json, the merged result so far, sketches included), so the
exporter only reads two files per scrape, and no HTTP server or thread runs under gevent's monkey-patching.
Latency quantiles come from the merged DDSketches (1 % relative error, exported as
harness_latency_relative_error), and gate status from the same evaluation `harness gate` does, on the snapshot.

Every metric is described in docs/monitoring.md; the Grafana dashboard and the alert rules in deploy/ use only
these names (tests check it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from harness.errors import ConfigError
from harness.gates.verdict import evaluate, totals_excluded
from harness.loadgen import env as hs
from harness.model.profile import GatesConfig
from harness.model.result import Result, Span, parse_result
from harness.model.sketch import RELATIVE_ACCURACY

QUANTILES = (0.5, 0.95, 0.99)
RUN_STATES = ("starting", "waiting", "running", "finished")
"""starting: before the Locust master writes progress (target, users, shaping); waiting: for workers."""
PREFIX = "harness_"
METRIC_NAMES = tuple(
    PREFIX + name
    for name in (
        "run",  # info
        "run_state",
        "users",
        "workers",
        "workers_expected",
        "requests_per_second",
        "error_ratio",
        "requests",  # counters get _total
        "request_failures",
        "request_bytes",
        "request_latency_seconds",
        "latency_seconds",
        "latency_relative_error",
        "origin_responses",
        "gate_passed",
        "gate_observed",
        "gate_threshold",
    )
)
"""Every family this exporter emits (without the _total/_info suffixes the exposition format adds)."""


@dataclass
class _Cached:
    mtime_ns: int
    result: Result


class RunCollector(Collector):
    """Reads the run folder's progress.json and snapshot.json at each scrape (the snapshot parsed once per change)."""

    def __init__(self, out_dir: Path, labels: dict[str, str]) -> None:
        self.out_dir = out_dir
        self.labels = labels
        self._snapshot: _Cached | None = None

    def collect(self) -> Iterator[Metric]:
        progress = _read_json(self.out_dir / hs.PROGRESS_FILE)
        info = InfoMetricFamily(PREFIX + "run", "the run this master is running")
        info.add_metric([], self.labels)
        yield info
        state = str(progress.get("state", "starting")) if progress else "starting"
        states = GaugeMetricFamily(PREFIX + "run_state", "1 for the run's current state", labels=["state"])
        for name in RUN_STATES:
            states.add_metric([name], 1.0 if name == state else 0.0)
        yield states
        for key, name, help_text in (
            ("users", "users", "Locust users running now"),
            ("workers", "workers", "Locust workers connected to the master"),
            ("workers_expected", "workers_expected", "workers the run waits for"),
            ("rps", "requests_per_second", "current request rate (Locust's last seconds)"),
        ):
            value = progress.get(key) if progress else None
            if isinstance(value, int | float):
                yield GaugeMetricFamily(PREFIX + name, help_text, value=float(value))
        if progress and isinstance(progress.get("error_pct"), int | float):
            yield GaugeMetricFamily(
                PREFIX + "error_ratio", "failed / all requests so far (0..1)", value=progress["error_pct"] / 100
            )
        result = self._read_snapshot()
        if result is not None:
            yield from _result_metrics(result)

    def _read_snapshot(self) -> Result | None:
        path = self.out_dir / hs.RESULT_FILE
        if not path.is_file():
            path = self.out_dir / hs.SNAPSHOT_FILE
        try:
            mtime_ns = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        if self._snapshot is None or self._snapshot.mtime_ns != mtime_ns:
            try:
                self._snapshot = _Cached(mtime_ns, parse_result(path.read_text(encoding="utf-8"), str(path)))
            except (OSError, ConfigError):  # replaced while read (written atomically, so rare): keep the last one
                return self._snapshot.result if self._snapshot else None
        return self._snapshot.result


def _result_metrics(result: Result) -> Iterator[Metric]:
    span = Span.of(result.windows, result.run.duration_s)
    labels = ["group", "name"]
    requests = CounterMetricFamily(
        PREFIX + "requests", "requests (and harness events) by group and name", labels=labels
    )
    failures = CounterMetricFamily(PREFIX + "request_failures", "failed requests by group and name", labels=labels)
    sent = CounterMetricFamily(PREFIX + "request_bytes", "response bytes by group and name", labels=labels)
    latency = GaugeMetricFamily(
        PREFIX + "request_latency_seconds",
        "latency quantile since the run started, from the merged DDSketch (see harness_latency_relative_error)",
        labels=[*labels, "quantile"],
    )
    origins = CounterMetricFamily(
        PREFIX + "origin_responses",
        "responses by the region that served them (x-origin-region)",
        labels=["group", "origin"],
    )
    by_origin: dict[tuple[str, str], int] = {}
    for (group, name), part in sorted(span.parts.items()):
        requests.add_metric([group, name], part.count)
        failures.add_metric([group, name], part.failure_count)
        sent.add_metric([group, name], part.bytes)
        for q, value in zip(QUANTILES, part.sketch.quantiles(list(QUANTILES)), strict=True):
            if value is not None:
                latency.add_metric([group, name, f"{q:g}"], value / 1000)
        for origin, count in part.origins.items():
            by_origin[group, origin] = by_origin.get((group, origin), 0) + count
    for (group, origin), count in sorted(by_origin.items()):
        origins.add_metric([group, origin], count)
    yield from (requests, failures, sent, latency, origins)
    overall = span.select(exclude_names=totals_excluded(result.gates or GatesConfig()))
    whole = GaugeMetricFamily(
        PREFIX + "latency_seconds",
        "latency quantile of every request since the run started (deliveries and observations left out, as the "
        "p95 gate counts them)",
        labels=["quantile"],
    )
    for q, value in zip(QUANTILES, overall.sketch.quantiles(list(QUANTILES)), strict=True):
        if value is not None:
            whole.add_metric([f"{q:g}"], value / 1000)
    yield whole
    yield GaugeMetricFamily(
        PREFIX + "latency_relative_error", "relative error bound of every latency quantile", value=RELATIVE_ACCURACY
    )
    yield from _gate_metrics(result)


def _gate_metrics(result: Result) -> Iterator[Metric]:
    passed = GaugeMetricFamily(PREFIX + "gate_passed", "1 passing, 0 failing (on the run so far)", labels=["gate"])
    observed = GaugeMetricFamily(PREFIX + "gate_observed", "the gate's observed value", labels=["gate", "unit"])
    threshold = GaugeMetricFamily(PREFIX + "gate_threshold", "the gate's threshold", labels=["gate", "unit"])
    for gate in evaluate(result).gates:
        if gate.kind != "gate":
            continue
        passed.add_metric([gate.name], 1.0 if gate.status == "passed" else 0.0)
        if gate.observed is not None:
            observed.add_metric([gate.name, gate.unit], gate.observed)
        if gate.threshold is not None:
            threshold.add_metric([gate.name, gate.unit], gate.threshold)
    yield from (passed, observed, threshold)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class MetricsServer:
    """`/metrics` for one run; stopped when the run ends."""

    def __init__(self, out_dir: Path, bind: str, port: int, labels: dict[str, str]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = RunCollector(out_dir, labels)
        self.registry.register(self.collector)
        try:
            self._server, self._thread = start_http_server(port, bind, registry=self.registry)
        except OSError as exc:
            raise ConfigError(
                f"--metrics-port {port}: cannot listen on {bind}:{port} ({exc.strerror or exc}); pick a free port"
            ) from None
        self.port = int(self._server.server_address[1])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class LiveMetrics:
    """The run's MetricsServer, if --metrics-port asked for one: started once the run has its folder, stopped when
    the run returns (after result.json, so a last scrape sees the final figures)."""

    def __init__(self, port: int | None, bind: str, log: TextIO) -> None:
        self.port, self.bind, self.log = port, bind, log
        self.server: MetricsServer | None = None

    def start(self, out_dir: Path, labels: dict[str, str]) -> None:
        if self.port is None or self.server is not None:
            return
        self.server = MetricsServer(out_dir, self.bind, self.port, labels)
        print(f"harness: metrics on http://{self.bind}:{self.server.port}/metrics", file=self.log, flush=True)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
