"""The Grafana dashboard and the alert rules use only metrics (and labels) the exporter emits, and the dashboard
is wired to the provisioned data source and folder (Grafana itself is not installed here: see docs/monitoring.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from monitor_synth import exposition, monitor_with, samples, synth, verdict_of

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "harness.json"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS_OWN = {"up"}
"""Series Prometheus writes itself for every target."""

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_TOKEN = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "query") and isinstance(value, str):
                yield value
            else:
                yield from _exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _exprs(item)


def parse(expr: str) -> tuple[set[str], dict[str, set[str]], set[str]]:
    """(metric names, label names matched per metric, grouping label names) of one PromQL expression."""
    matched: dict[str, set[str]] = {}
    for m in _MATCHERS.finditer(_STRING.sub('""', expr)):
        labels = {part.split("=")[0].split("!")[0].strip() for part in m.group(2).split(",") if part.strip()}
        matched.setdefault(m.group(1) or "", set()).update(labels)
    text = _STRING.sub("", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    grouping: set[str] = set()
    for m in _GROUPING.finditer(text):
        grouping.update(t.strip() for t in m.group(2).split(",") if t.strip())
    text = _GROUPING.sub(" ", text)
    names = set()
    for m in _TOKEN.finditer(text):
        rest = text[m.end() :].lstrip()
        if rest.startswith("(") or m.group(0) in _KEYWORDS or (m.start() > 0 and text[m.start() - 1].isdigit()):
            continue  # a function, a keyword, or a unit suffix such as the `m` of 5m
        names.add(m.group(0))
    return names, matched, grouping


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Every sample name the exporter emits on a full snapshot (every kind of request, a finished verdict), with
    its label names; Prometheus adds job and instance to each."""
    s = synth()
    monitor = monitor_with(s, tmp_path_factory.mktemp("dash"))
    monitor.finish(verdict_of(s))
    out: dict[str, set[str]] = {}
    for sample in samples(exposition(monitor)):
        out.setdefault(sample.name, {"job", "instance"}).update(sample.labels)
    return out


def _check(exprs: list[str], emitted: dict[str, set[str]], where: str) -> None:
    assert exprs, f"{where}: no PromQL expressions found"
    known = {**emitted, **{name: {"job", "instance"} for name in PROMETHEUS_OWN}}
    for expr in exprs:
        names, matched, grouping = parse(expr)
        assert names, f"{where}: {expr!r} names no metric"
        unknown = names - set(known)
        assert not unknown, f"{where}: {expr!r} uses {sorted(unknown)}, which the exporter does not emit"
        for name, labels in matched.items():
            assert name in known, f"{where}: {expr!r}: a matcher without a metric name"
            assert labels <= known[name], f"{where}: {expr!r}: {name} has no label {sorted(labels - known[name])}"
        labels_here = set().union(*(known[name] for name in names))
        assert grouping <= labels_here, f"{where}: {expr!r} groups by {sorted(grouping - labels_here)}"


def test_the_parser_finds_names_labels_and_grouping() -> None:
    names, matched, grouping = parse(
        'sum by (group) (rate(harness_x_total{type="STORAGE",request=~"a|b"}[1m])) / on (job) harness_y offset 5m'
    )
    assert names == {"harness_x_total", "harness_y"}
    assert matched == {"harness_x_total": {"type", "request"}}
    assert grouping == {"group", "job"}


def test_every_dashboard_expression_uses_only_emitted_metrics(emitted: dict[str, set[str]]) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = list(_exprs(dashboard))
    _check(exprs, emitted, "harness.json")
    used = set().union(*(parse(e)[0] for e in exprs))
    seed = {  # the deployment guide's key metrics, each on the dashboard
        "request rate": "harness_requests_total",
        "p95": "harness_latency_seconds",
        "errors": "harness_request_errors_total",
        "delivery latency": "harness_delivery_latency_seconds",
        "meeting join": "harness_meeting_join_seconds",
        "upload speed": "harness_request_body_bytes_total",
        "download speed": "harness_response_bytes_total",
        "region share": "harness_origin_share",
    }
    assert {k: v for k, v in seed.items() if v not in used} == {}
    lines = {p["title"]: p["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] for p in dashboard["panels"]}
    assert (lines["Request rate vs 1,000 req/s"], lines["p95 latency vs 2 s"], lines["Error rate vs 5 %"]) == (
        1000,
        2,
        0.05,
    )


def test_every_alert_expression_uses_only_emitted_metrics(emitted: dict[str, set[str]]) -> None:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    _check([r["expr"] for g in rules["groups"] for r in g["rules"]], emitted, "alerts.yml")


def test_the_dashboard_is_wired_to_the_provisioned_data_source_and_folder() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    (source,) = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    refs = [p["datasource"] for p in dashboard["panels"]] + [
        t["datasource"] for p in dashboard["panels"] for t in p["targets"]
    ]
    assert refs and all(r == {"type": "prometheus", "uid": source["uid"]} for r in refs)
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "harness.yml").read_text())["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/var/lib/grafana/dashboards"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and dashboard["uid"] == "harness-run"
