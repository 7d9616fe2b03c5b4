"""One scrape's metric families from a `View`: a pure function, so a synthetic snapshot tests the exposition text.

Quantiles are read from the run's DDSketches (harness/model/sketch.py) merged over the recent windows, in seconds;
`harness_quantile_relative_error` carries their bound. Sums and counts cover the whole run, as Prometheus
summaries do, so `rate(x_sum) / rate(x_count)` is a mean over any range.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from harness.model.live import NOT_REQUESTS, Live, LiveStat
from harness.model.metrics import DELIVERY_NAME, DUPLICATE_KIND, LOST_KIND, MEETING_JOIN_NAME, REORDERED_NAME
from harness.model.sketch import RELATIVE_ACCURACY, Sketch
from harness.monitor import names as n
from harness.monitor.state import View

REQUEST_LABELS = ["group", "type", "request"]


def render(view: View, accept: str = "") -> tuple[bytes, str]:
    """The /metrics body and its content type: OpenMetrics when `accept` (the Accept header) asks for it, else
    Prometheus' text format 0.0.4."""
    encoder, content_type = choose_encoder(accept)
    return encoder(_Families(families(view))), content_type


class _Families(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


def families(view: View) -> list[Metric]:
    out: list[Metric] = [*_run(view), *_requests(view.live), *_delivery(view.live), *_gates(view)]
    return sorted(out, key=lambda m: n.ALL.index(_exposed(m)))


def _exposed(m: Metric) -> str:
    return f"{m.name}_total" if m.type == "counter" else m.name


def _gauge(name: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, n.HELP[name], labels=labels or [])


def _counter(name: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(name, n.HELP[name], labels=labels)


def _run(view: View) -> list[Metric]:
    info = _gauge(n.RUN_INFO, ["run_id", "profile", "target"])
    if view.run is not None:
        info.add_metric([view.run.run_id, view.run.profile, view.run.target], 1)
    state = _gauge(n.RUN_STATE, ["state"])
    for s in n.RUN_STATES:
        state.add_metric([s], 1 if s == view.state else 0)
    out: list[Metric] = [info, state]
    progress = view.progress or {}
    for name, key in ((n.USERS, "users"), (n.WORKERS, "workers"), (n.WORKERS_EXPECTED, "workers_expected")):
        g = _gauge(name)
        value = progress.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            g.add_metric([], value)
        out.append(g)
    return out


def _requests(live: Live | None) -> list[Metric]:
    requests = _counter(n.REQUESTS, REQUEST_LABELS)
    errors = _counter(n.ERRORS, [*REQUEST_LABELS, "kind"])
    rate = _gauge(n.REQUEST_RATE)
    response_bytes = _counter(n.RESPONSE_BYTES, REQUEST_LABELS)
    body_bytes = _counter(n.REQUEST_BODY_BYTES, REQUEST_LABELS)
    per_request = _Summary(n.REQUEST_LATENCY, REQUEST_LABELS)
    per_group = _Summary(n.GROUP_LATENCY, ["group"])
    overall = _Summary(n.LATENCY, [])
    origins = _counter(n.ORIGIN_RESPONSES, ["group", "region"])
    share = _gauge(n.ORIGIN_SHARE, ["group", "region"])
    bound = _gauge(n.QUANTILE_ERROR)
    bound.add_metric([], RELATIVE_ACCURACY)
    out: list[Metric] = [requests, errors, rate, response_bytes, body_bytes, origins, share, bound]
    if live is None:
        return [*out, per_request.metric, per_group.metric, overall.metric]
    if live.rps is not None:
        rate.add_metric([], live.rps)
    by_group: dict[str, list[LiveStat]] = {}
    for s in live.stats:
        if s.name in NOT_REQUESTS:
            continue
        by_group.setdefault(s.group, []).append(s)
        labels = [s.group, s.type, s.name]
        requests.add_metric(labels, s.count)
        for kind, count in sorted(s.failures.items()):
            errors.add_metric([*labels, kind], count)
        response_bytes.add_metric(labels, s.bytes)
        body_bytes.add_metric(labels, s.body_bytes)
        per_request.add(labels, [s])
    for group, stats in sorted(by_group.items()):
        per_group.add([group], stats)
        tally: dict[str, int] = {}
        for s in stats:
            for region, count in s.origins.items():
                tally[region] = tally.get(region, 0) + count
        total = sum(tally.values())
        for region, count in sorted(tally.items()):
            origins.add_metric([group, region], count)
            share.add_metric([group, region], count / total)
    overall.add([], [s for stats in by_group.values() for s in stats])
    return [*out, per_request.metric, per_group.metric, overall.metric]


def _delivery(live: Live | None) -> list[Metric]:
    latency = _Summary(n.DELIVERY_LATENCY, ["group"])
    join = _Summary(n.MEETING_JOIN, ["group"])
    messages = _counter(n.DELIVERY_MESSAGES, ["group"])
    lost = _counter(n.DELIVERY_LOST, ["group"])
    duplicates = _counter(n.DELIVERY_DUPLICATES, ["group"])
    reordered = _counter(n.DELIVERY_REORDERED, ["group"])
    out: list[Metric] = [latency.metric, join.metric, messages, lost, duplicates, reordered]
    if live is None:
        return out
    for group in sorted({s.group for s in live.stats}):
        delivered = [s for s in live.stats if s.group == group and s.name == DELIVERY_NAME]
        if delivered:
            latency.add([group], delivered)
            dup = sum(s.failures.get(DUPLICATE_KIND, 0) for s in delivered)
            messages.add_metric([group], sum(s.count for s in delivered) - dup)
            lost.add_metric([group], sum(s.failures.get(LOST_KIND, 0) for s in delivered))
            duplicates.add_metric([group], dup)
        joins = [s for s in live.stats if s.group == group and s.name == MEETING_JOIN_NAME]
        if joins:
            join.add([group], joins)
        later = [s for s in live.stats if s.group == group and s.name == REORDERED_NAME]
        if later:
            reordered.add_metric([group], sum(s.count for s in later))
    return out


def _gates(view: View) -> list[Metric]:
    status = _gauge(n.GATE_STATUS, ["gate", "kind"])
    observed = _gauge(n.GATE_OBSERVED, ["gate", "unit"])
    threshold = _gauge(n.GATE_THRESHOLD, ["gate", "unit"])
    verdict = _gauge(n.VERDICT, ["verdict"])
    if view.verdict is not None:
        for g in view.verdict.gates:
            status.add_metric([g.name, g.kind], 1 if g.status == "passed" else 0)
            if g.observed is not None:
                observed.add_metric([g.name, g.unit], g.observed)
            if g.threshold is not None:
                threshold.add_metric([g.name, g.unit], g.threshold)
        for v in n.VERDICTS:
            verdict.add_metric([v], 1 if v == view.verdict.status else 0)
    return [status, observed, threshold, verdict]


class _Summary:
    """A summary family whose quantiles come from merged sketches (prometheus_client's SummaryMetricFamily takes
    no quantiles)."""

    def __init__(self, name: str, labels: list[str]) -> None:
        self.labels = labels
        self.metric = Metric(name, n.HELP[name], "summary")

    def add(self, values: list[str], stats: Iterable[LiveStat]) -> None:
        recent, count, sum_ms = Sketch(), 0, 0.0
        for s in stats:
            count += s.ok_count
            sum_ms += s.ok_sum_ms
            if s.recent is not None:
                recent.merge(s.recent)
        labels = dict(zip(self.labels, values, strict=True))
        name = self.metric.name
        for q, value_ms in zip(n.QUANTILES, recent.quantiles(list(n.QUANTILES)), strict=True):
            if value_ms is not None:  # no recent sample: no quantile (rather than NaN)
                self.metric.add_sample(name, {**labels, "quantile": f"{q:g}"}, value_ms / 1000.0)
        self.metric.add_sample(f"{name}_sum", labels, sum_ms / 1000.0)
        self.metric.add_sample(f"{name}_count", labels, count)
