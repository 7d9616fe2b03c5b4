"""Request legs in the result (schema 1.2, payload 3) and the top contributors to a p95."""

from __future__ import annotations

import json

import pytest

from harness.model.breakdown import leg_rows, parts_of, top_contributors
from harness.model.result import PAYLOAD_VERSION, ResultBuilder, RunInfo, load_result

T0 = 1_700_000_000.0


def run_info() -> RunInfo:
    return RunInfo(run_id="r", profile="p", started_s=T0, ended_s=T0 + 60, target="t", workers_expected=1,
                   workers_seen=1)  # fmt: skip


def slow_tail_builder() -> ResultBuilder:
    """`fast` (90 requests of ~10 ms on reused connections) and `upload` (10 of ~500 ms, body-bound uploads: the
    slow tail), and a websocket-style name whose legs are all connect."""
    b = ResultBuilder(5.0, worker="w")
    for i in range(90):
        b.record("fast", "REST", "china", 10.0, True, T0 + i * 0.01, connect_ms=None, wait_ms=9.0, body_ms=1.0)
    for i in range(10):
        connect = 100.0 if i == 0 else None
        total = 500.0 + (connect or 0.0)
        b.record("upload", "STORAGE", "china", total, True, T0 + i * 0.01, connect_ms=connect, wait_ms=450.0,
                 body_ms=50.0, sent_bytes=1000)  # fmt: skip
    b.record("upload", "STORAGE", "china", 0.0, False, T0, failure_kind="error", connect_ms=5.0, wait_ms=0.0)
    return b


def test_legs_survive_the_worker_payload_and_result_json(tmp_path):
    master = ResultBuilder(5.0)
    payload = slow_tail_builder().to_payload(reset=True)
    assert payload["v"] == PAYLOAD_VERSION == 5
    master.merge(json.loads(json.dumps(payload)))  # the wire is JSON/msgpack: no int keys, no objects
    result = master.build(run_info())
    path = tmp_path / "result.json"
    path.write_text(result.model_dump_json())
    loaded = load_result(path)
    upload = next(s for w in loaded.windows for s in w.stats if s.name == "upload")
    assert upload.legs is not None
    assert (upload.legs.new_connections, upload.legs.reused, upload.legs.sent_bytes) == (2, 9, 10_000)
    assert upload.legs.connect.count == 1  # the failed request's connect is counted, not timed
    assert upload.legs.wait.count == 10 and upload.legs.wait.quantile(0.5) == pytest.approx(450.0, rel=0.01)
    fast = next(s for w in loaded.windows for s in w.stats if s.name == "fast")
    assert fast.legs is not None and fast.legs.new_connections == 0


def test_a_version_2_worker_payload_still_merges():
    payload = slow_tail_builder().to_payload()
    payload["v"] = 2
    payload["stats"] = [row[:10] for row in payload["stats"]]
    master = ResultBuilder(5.0)
    master.merge(payload)
    result = master.build(run_info())
    assert all(s.legs is None for w in result.windows for s in w.stats)
    assert sum(s.count for w in result.windows for s in w.stats) == 101


def test_top_contributors_name_the_slow_request_and_its_leg():
    result = slow_tail_builder().build(run_info())
    parts = parts_of(result.windows)
    tail = top_contributors(parts, group="china", q=0.9)
    assert tail.threshold_ms == pytest.approx(10.0, rel=0.01)
    assert [c.name for c in tail.contributors] == ["upload"] and tail.contributors[0].share_pct == 100.0
    legs = tail.contributors[0].tail
    assert legs is not None and legs.dominant == "wait" and legs.samples == 10
    # the legs add up to the total (the tail sums are exact; the leg medians are within the sketch's 1 %)
    assert legs.connect_ms + legs.wait_ms + legs.body_ms == pytest.approx(legs.total_ms, rel=1e-9)
    assert legs.connect_ms == pytest.approx(10.0)  # one of ten paid 100 ms to connect


def test_leg_rows_give_medians_and_reuse():
    result = slow_tail_builder().build(run_info())
    rows = {r.name: r for r in leg_rows(parts_of(result.windows))}
    assert rows["fast"].reuse_pct == 100.0 and rows["fast"].connect_p50_ms is None
    assert rows["upload"].connect_p50_ms == pytest.approx(100.0, rel=0.01)
    assert rows["upload"].reuse_pct == pytest.approx(100 * 9 / 11)
    p50 = rows["upload"].p50_ms
    legs_p50 = rows["upload"].wait_p50_ms + rows["upload"].body_p50_ms  # type: ignore[operator]
    assert p50 == pytest.approx(legs_p50, rel=0.02)  # reused requests: total = wait + body, within the sketch
