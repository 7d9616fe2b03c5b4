"""The result model and its builder: per-window recording, worker → master payloads, JSON round trip."""

from __future__ import annotations

import json
import random

import pytest

from harness.errors import ConfigError
from harness.model.profile import GatesConfig
from harness.model.result import (
    SCHEMA_MINOR,
    SCHEMA_VERSION,
    ResultBuilder,
    RunInfo,
    SteadyState,
    aggregate,
    dump_result,
    load_result,
    steady_windows,
)

T0 = 1_700_000_000.0  # a multiple of 5 and 1, so window boundaries fall on whole seconds from the start


def run_info(**kw) -> RunInfo:
    base = dict(
        run_id="r1",
        profile="load",
        started_s=T0,
        ended_s=T0 + 60,
        target="reference",
        workers_expected=2,
        workers_seen=2,
    )
    return RunInfo(**(base | kw))


def feed(builders: list[ResultBuilder], n: int = 3000, seed: int = 1) -> None:
    rnd = random.Random(seed)
    for i in range(n):
        b = builders[i % len(builders)]
        group = "china" if i % 4 == 0 else "baseline"
        ok = rnd.random() > 0.02
        b.record(
            "rest.select" if i % 3 else "storage.upload",
            "GET" if i % 3 else "POST",
            group,
            rnd.lognormvariate(4, 1),
            ok,
            T0 + rnd.uniform(0, 60),
            origin_region="ap-northeast-1" if group == "china" else "ap-southeast-1",
            failure_kind=None if ok else rnd.choice(["timeout", "http_500"]),
            bytes=100,
        )


def test_workers_payloads_merge_to_the_same_result_as_one_builder():
    single = ResultBuilder(5.0)
    feed([single])
    w1, w2 = ResultBuilder(5.0, worker="w1"), ResultBuilder(5.0, worker="w2")
    feed([w1, w2])
    master = ResultBuilder(5.0, worker="master")
    for w in (w1, w2):
        master.merge(json.loads(json.dumps(w.to_payload())))  # payloads cross a process boundary as JSON-able data
    assert master.workers_seen == {"w1", "w2"}
    a, b = single.build(run_info()), master.build(run_info())
    assert len(a.windows) == len(b.windows) == 12
    for wa, wb in zip(a.windows, b.windows, strict=True):
        assert wa.start_s == wb.start_s
        for sa, sb in zip(wa.stats, wb.stats, strict=True):
            assert (sa.name, sa.group, sa.count, sa.failures, sa.bytes, sa.origins) == (
                sb.name,
                sb.group,
                sb.count,
                sb.failures,
                sb.bytes,
                sb.origins,
            )
            assert sa.sketch.bins == sb.sketch.bins  # exactly equal buckets


def test_incremental_payloads_with_reset_add_up():
    worker = ResultBuilder(5.0, worker="w1")
    master = ResultBuilder(5.0)
    worker.record("a", "GET", "g", 10.0, True, T0 + 1)
    master.merge(worker.to_payload(reset=True))
    assert worker.request_count == 0
    worker.record("a", "GET", "g", 20.0, True, T0 + 2)
    master.merge(worker.to_payload(reset=True))
    stat = master.build(run_info()).windows[0].stats[0]
    assert stat.count == 2
    assert stat.sketch.count == 2


def test_failures_are_counted_by_kind_and_kept_out_of_the_latency_sketch():
    b = ResultBuilder(1.0)
    b.record("message.delivery", "WS", "g", 50.0, True, T0)
    b.record("message.delivery", "WS", "g", 0.0, False, T0, failure_kind="lost")
    b.record("message.delivery", "WS", "g", 70.0, False, T0, failure_kind="duplicate")
    b.record("message.delivery", "WS", "g", 9.0, False, T0)
    stat = b.build(run_info()).windows[0].stats[0]
    assert stat.count == 4
    assert stat.failures == {"lost": 1, "duplicate": 1, "error": 1}
    assert stat.sketch.count == 1
    assert stat.sketch.quantile(0.5) == pytest.approx(50.0, rel=0.01)


def test_windows_are_aligned_and_steady_state_takes_only_whole_windows_inside_the_plateau():
    b = ResultBuilder(5.0)
    for t in (0.5, 4.9, 5.0, 12.0, 27.0, 58.0):
        b.record("a", "GET", "g", 10.0, True, T0 + t)
    r = b.build(run_info(steady_state=SteadyState(start_s=T0 + 3, end_s=T0 + 31)))
    assert [w.start_s - T0 for w in r.windows] == [0, 5, 10, 25, 55]
    inside, duration_s = steady_windows(r)
    # Plateau 3..31 s holds the whole windows 5-10, 10-15, 15-20, 20-25, 25-30 (15-25 empty but still counted).
    assert [w.start_s - T0 for w in inside] == [5, 10, 25]
    assert duration_s == 25.0
    assert SteadyState.from_plateau(T0, (3.0, 31.0)) == r.run.steady_state
    agg = aggregate(inside, duration_s)
    assert agg.count == 3
    assert agg.rps == pytest.approx(3 / 25)


def test_dump_and_load_round_trip(tmp_path):
    b = ResultBuilder(5.0)
    feed([b], n=500)
    b.record_users(T0, 10)
    b.record_cpu(T0, 42.0)
    result = b.build(run_info(), GatesConfig(p95_ms=1500))
    path = dump_result(result, tmp_path / "run" / "result.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert set(data["windows"][0]["stats"][0]["sketch"]) >= {"a", "n", "k", "c"}
    loaded = load_result(path)
    assert loaded == result
    assert loaded.gates is not None and loaded.gates.p95_ms == 1500


def test_other_schema_versions_are_refused(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(ConfigError, match=r"result.json: schema_version: 99 is not supported \(this harness reads 1\)"):
        load_result(path)


def test_unreadable_or_malformed_results_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"missing\.json: cannot read result"):
        load_result(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ConfigError, match=r"bad\.json: not valid JSON"):
        load_result(bad)


def test_payloads_with_a_different_window_are_refused():
    with pytest.raises(ValueError, match=r"window_s 1\.0 differs from the master's 5\.0"):
        ResultBuilder(5.0).merge(ResultBuilder(1.0).to_payload())


def test_origins_are_tallied_per_user_class_and_merge_across_workers():
    w1, w2, master = ResultBuilder(5.0, worker="w1"), ResultBuilder(5.0, worker="w2"), ResultBuilder(5.0)
    w1.record("a", "GET", "china", 10.0, True, T0, origin_region="ap-northeast-1", user_class="WebUser")
    w2.record("a", "GET", "china", 10.0, False, T0, origin_region="ap-northeast-1", user_class="WebUser")
    w2.record("a", "GET", "china", 10.0, True, T0, origin_region="ap-southeast-1", user_class="MessagingUser")
    w2.record("a", "GET", "china", 10.0, True, T0, origin_region="ap-southeast-1")  # no class: group tally only
    w2.record("a", "GET", "china", 10.0, True, T0, user_class="WebUser")  # no region: nothing to tally
    for w in (w1, w2):
        master.merge(json.loads(json.dumps(w.to_payload())))
    [stat] = master.build(run_info()).windows[0].stats
    assert stat.origins == {"ap-northeast-1": 2, "ap-southeast-1": 2}
    assert stat.origins_by_class == {"WebUser": {"ap-northeast-1": 2}, "MessagingUser": {"ap-southeast-1": 1}}
    agg = aggregate(master.build(run_info()).windows, group="china")
    assert agg.origins_by_class["WebUser"] == {"ap-northeast-1": 2}


def test_a_version_1_worker_payload_still_merges():
    row = ResultBuilder(5.0)
    row.record("a", "GET", "g", 10.0, True, T0, origin_region="r1")
    row.record("a", "GET", "g", 10.0, True, T0, origin_region="r1")
    old = row.to_payload() | {"v": 1, "worker": "old"}
    old["stats"] = [r[:9] for r in old["stats"]]  # version 1 rows: no per-class column
    master = ResultBuilder(5.0)
    master.merge(old)
    [stat] = master.build(run_info()).windows[0].stats
    assert (stat.count, stat.origins, stat.origins_by_class) == (2, {"r1": 2}, {})


def test_a_schema_1_0_file_loads_and_new_files_carry_the_current_minor(tmp_path):
    b = ResultBuilder(5.0)
    b.record("a", "GET", "g", 10.0, True, T0, origin_region="r1", user_class="WebUser")
    data = json.loads(b.build(run_info()).model_dump_json())
    assert (data["schema_version"], data["schema_minor"]) == (1, SCHEMA_MINOR) and SCHEMA_MINOR >= 2
    del data["schema_minor"]  # as written before minor versions existed
    del data["arrival"], data["windows"][0]["arrivals"]
    del data["windows"][0]["stats"][0]["origins_by_class"]
    del data["windows"][0]["stats"][0]["legs"]
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data))
    loaded = load_result(path)
    assert loaded.schema_minor == 0 and loaded.windows[0].stats[0].origins == {"r1": 1}
    assert loaded.windows[0].stats[0].origins_by_class == {}


def test_a_file_from_a_newer_minor_with_unknown_fields_says_so(tmp_path):
    data = json.loads(ResultBuilder(5.0).build(run_info()).model_dump_json())
    data["schema_minor"], data["future_field"] = SCHEMA_MINOR + 1, 1
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data))
    newer, current = rf"1\.{SCHEMA_MINOR + 1}", rf"1\.{SCHEMA_MINOR}"
    with pytest.raises(
        ConfigError, match=rf"future_field: .*written by schema {newer}, this harness reads up to {current}"
    ):
        load_result(path)
