"""The /metrics text of a synthetic snapshot: names, labels and values, the quantiles exactly the sketches'."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from monitor_synth import JAPAN, SINGAPORE, exposition, monitor_with, samples, synth, value, verdict_of

from harness.model.metrics import DELIVERY_NAME, MEETING_JOIN_NAME
from harness.model.sketch import RELATIVE_ACCURACY, Sketch
from harness.monitor import names as n
from harness.monitor.state import RunMonitor

QUANTILES = {"0.5": 0.5, "0.95": 0.95, "0.99": 0.99}


def test_request_counters_and_errors_carry_group_type_and_request(tmp_path: Path) -> None:
    text = exposition(monitor_with(synth(), tmp_path))
    home = {"group": "baseline", "type": "GET", "request": "home"}
    assert value(text, n.REQUESTS, **home) == 200 + 50 + 3  # recent, old and failed: every request of the run
    assert value(text, n.ERRORS, **home, kind="error") == 2
    assert value(text, n.ERRORS, **home, kind="timeout") == 1
    upload = {"group": "china", "type": "STORAGE", "request": "upload"}
    download = {**upload, "request": "download"}
    assert value(text, n.REQUEST_BODY_BYTES, **upload) == 10 * 100_000
    assert value(text, n.RESPONSE_BYTES, **download) == 10 * 100_000
    requests = {s.labels["request"] for s in samples(text) if s.name == n.REQUESTS}
    assert DELIVERY_NAME not in requests and "message.reordered" not in requests  # not requests: own families
    assert value(text, n.USERS) == 12 and value(text, n.WORKERS) == 2 and value(text, n.WORKERS_EXPECTED) == 2


def test_quantiles_are_the_recent_sketches_in_seconds_with_their_error_bound(tmp_path: Path) -> None:
    s = synth()
    text = exposition(monitor_with(s, tmp_path))
    home = s.recent[("baseline", "home")]
    for label, q in QUANTILES.items():
        got = value(text, n.REQUEST_LATENCY, group="baseline", type="GET", request="home", quantile=label)
        assert got == home.quantile(q) / 1000  # the old 9 s samples are out of the recent span
    # sum and count: every successful request of the run, the old ones too
    assert value(text, f"{n.REQUEST_LATENCY}_count", group="baseline", type="GET", request="home") == 250
    total_ms = home.sum_ms + 50 * 9000.0
    got_sum = value(text, f"{n.REQUEST_LATENCY}_sum", group="baseline", type="GET", request="home")
    assert got_sum == pytest.approx(total_ms / 1000)
    china = Sketch()
    for name in ("select messages", "upload", "download"):
        china.merge(s.recent[("china", name)])
    assert value(text, n.GROUP_LATENCY, group="china", quantile="0.95") == china.quantile(0.95) / 1000
    everything = Sketch()
    for (_, name), sketch in s.recent.items():
        if name != DELIVERY_NAME:
            everything.merge(sketch)
    assert value(text, n.LATENCY, quantile="0.99") == everything.quantile(0.99) / 1000
    assert value(text, n.QUANTILE_ERROR) == RELATIVE_ACCURACY
    delivery = s.recent[("china", DELIVERY_NAME)]
    assert value(text, n.DELIVERY_LATENCY, group="china", quantile="0.95") == delivery.quantile(0.95) / 1000
    join = s.recent[("baseline", MEETING_JOIN_NAME)]
    assert value(text, n.MEETING_JOIN, group="baseline", quantile="0.5") == join.quantile(0.5) / 1000


def test_delivery_loss_and_route_share(tmp_path: Path) -> None:
    text = exposition(monitor_with(synth(), tmp_path))
    assert value(text, n.DELIVERY_MESSAGES, group="china") == 31  # 30 delivered + 1 lost; the duplicate left out
    assert value(text, n.DELIVERY_LOST, group="china") == 1
    assert value(text, n.DELIVERY_DUPLICATES, group="china") == 1
    assert value(text, n.DELIVERY_REORDERED, group="china") == 1
    # china: 32 of 40 REST reads and all 20 storage calls served by Japan
    assert value(text, n.ORIGIN_RESPONSES, group="china", region=JAPAN) == 52
    assert value(text, n.ORIGIN_SHARE, group="china", region=JAPAN) == pytest.approx(52 / 60)
    assert value(text, n.ORIGIN_SHARE, group="baseline", region=SINGAPORE) == 1.0


def test_run_state_info_gates_and_verdict_follow_the_run(tmp_path: Path) -> None:
    s = synth()
    monitor = monitor_with(s, tmp_path, state="waiting")
    path = tmp_path / "progress.json"

    def state() -> str:
        text = exposition(monitor)
        (on,) = [x.labels["state"] for x in samples(text) if x.name == n.RUN_STATE and x.value == 1]
        return on

    assert state() == "starting"  # the master still waits for its workers
    path.write_text(json.dumps({**json.loads(path.read_text()), "state": "running"}))
    assert state() == "running"
    monitor.stopping()
    assert state() == "stopping"
    text = exposition(monitor)
    assert not [x for x in samples(text) if x.name in (n.GATE_STATUS, n.VERDICT)]  # judged only at the end
    verdict = verdict_of(s)
    monitor.finish(verdict)
    assert state() == "finished"
    text = exposition(monitor)
    info = [x.labels for x in samples(text) if x.name == n.RUN_INFO]
    assert info == [{"run_id": "load-20240101-000000-abcd", "profile": "load", "target": "http://127.0.0.1:54320"}]
    gates = {g.name: g for g in verdict.gates}
    assert value(text, n.GATE_STATUS, gate="error_rate", kind="gate") == 1  # 3 of 253: 1.2 % < 5 %
    assert value(text, n.GATE_STATUS, gate="p95", kind="gate") == 0  # the old 9 s samples are in the plateau
    assert value(text, n.GATE_OBSERVED, gate="p95", unit="ms") == gates["p95"].observed
    assert value(text, n.GATE_THRESHOLD, gate="p95", unit="ms") == 2000
    assert value(text, n.VERDICT, verdict=verdict.status) == 1
    assert sum(x.value for x in samples(text) if x.name == n.VERDICT) == 1


def test_before_the_master_writes_anything_only_the_state_and_bounds_show(tmp_path: Path) -> None:
    monitor = RunMonitor()
    text = exposition(monitor)
    names = {x.name for x in samples(text)}
    assert names == {n.RUN_STATE, n.QUANTILE_ERROR}
    monitor.begin("r", "p", "t", tmp_path / "progress.json")  # no file yet
    assert value(exposition(monitor), n.RUN_STATE, state="starting") == 1


def test_every_family_has_its_help_text_and_docs_list_every_metric(tmp_path: Path) -> None:
    text = exposition(monitor_with(synth(), tmp_path))
    for name in n.ALL:
        assert f"# HELP {name} {n.HELP[name]}" in text
    docs = (Path(__file__).resolve().parents[2] / "docs" / "monitoring.md").read_text(encoding="utf-8")
    missing = [name for name in n.ALL if f"`{name}`" not in docs]
    assert not missing, f"docs/monitoring.md does not describe {missing}"
