"""Hop counts, the `_hops` stamp, latency legs, attribution and the result's `hops` section (docs/delivery.md)."""

from __future__ import annotations

import json

import pytest

from harness.errors import ConfigError
from harness.model import hop_counts as hc
from harness.model.delivery import delivery_legs
from harness.model.hops import (
    DeliveryHops,
    HopWindow,
    attribute,
    attribute_all,
    dominant_leg,
    fold_server,
    leg_rows,
    leg_sketches,
)
from harness.model.metrics import DELIVERY_LEGS
from harness.model.result import PAYLOAD_VERSION, ResultBuilder, RunInfo, parse_result
from harness.model.sketch import Sketch


def test_envelope_key_reads_the_row_and_refuses_others() -> None:
    row = {"metadata": {"harness": {"run": "load-1-abc", "from": "u1", "seq": 3, "t_ms": 1_700_000_001_234.5}}}
    assert hc.envelope_key(row) == ("load-1-abc|1700000001", "u1", 1_700_000_001_234.5)
    assert hc.envelope_key({"metadata": {"other": 1}}) is None
    assert hc.envelope_key({"metadata": "text"}) is None
    assert hc.bucket_key('a"b', 1.0) is None and hc.bucket_key("a|b", 1.0) is None  # unsafe to carry unescaped


def test_the_edge_finds_the_stamp_and_adds_its_time() -> None:
    data = '{"schema":"public"}'
    stamped = hc.stamp_json("run-1|17", 1.0, 2.0, 3.0) + data[1:]
    frame = '{"topic":"realtime:x","event":"postgres_changes","ref":null,"payload":{"ids":[1],"data":' + stamped + "}}"
    out, key = hc.edge_stamp(frame, 4.5)
    assert key == "run-1|17"
    assert json.loads(out)["payload"]["data"]["_hops"] == {"k": "run-1|17", "e": 4.5, "c": 1.0, "f": 2.0, "o": 3.0}
    assert json.loads(out)["payload"]["data"]["schema"] == "public"
    plain = '{"topic":"t","event":"phx_reply","payload":{}}'
    assert hc.edge_stamp(plain, 1.0) == (plain, None)


def test_counters_stay_bounded_and_filter_by_run() -> None:
    counters = hc.HopCounters(max_buckets=2)
    counters.add("a-1|10", hc.FEED)
    counters.add("a-2|11", hc.FEED, 2)
    counters.add("b|12", hc.FEED)  # evicts the oldest bucket
    assert counters.evicted == 1
    assert counters.snapshot("a") == [{"run": "a-2", "t_s": 11, "counts": {"feed": 2}}]
    assert [b["run"] for b in counters.snapshot()] == ["a-2", "b"]
    assert counters.snapshot("a-") == []  # a prefix must end at a dash: "a" matches "a-2", "a-" matches nothing


def test_fault_spec_drops_every_nth_at_its_hop_only() -> None:
    fault = hc.Fault.parse("written:3")
    assert fault is not None
    assert [fault.drop(hc.WRITTEN) for _ in range(6)] == [False, False, True, False, False, True]
    assert not fault.drop(hc.FEED)
    assert hc.Fault.parse("") is None and hc.Fault.parse("off") is None
    assert hc.Fault.from_env({hc.FAULT_ENV: "relayed:2"}) == hc.Fault("relayed", 2)
    with pytest.raises(ConfigError, match="hop one of"):
        hc.Fault.parse("nowhere:3")
    with pytest.raises(ConfigError, match="≥ 1"):
        hc.Fault.parse("feed:0")


def test_legs_sum_to_the_total_whatever_the_stamps() -> None:
    sent, received = 1000.0, 1000.5  # 500 ms
    stamp = {"k": "r|1000", "c": 1_000_010.0, "f": 1_000_030.0, "o": 1_000_040.0, "e": 1_000_100.0}
    legs = delivery_legs(sent, received, stamp)
    assert [leg for leg, _ in legs] == list(DELIVERY_LEGS)
    assert dict(legs) == pytest.approx({"commit": 10, "feed": 20, "fanout": 10, "edge": 60, "client": 400})
    # Out of order or outside the delivery: clamped, still summing to the total.
    skewed = {"c": 999_000.0, "f": 1_000_600.0, "o": 1_000_020.0}
    legs = delivery_legs(sent, received, skewed)
    assert sum(ms for _, ms in legs) == pytest.approx(500.0)
    assert all(ms >= 0 for _, ms in legs)
    # No stamp (a real deployment): Realtime's commit_timestamp alone splits send → commit → client.
    legs = delivery_legs(sent, received, None, "1970-01-01T00:16:40.100Z")
    assert dict(legs) == pytest.approx({"commit": 100.0, "client": 400.0})
    assert delivery_legs(sent, sent - 1.0) == [("client", 0.0)]  # receipt before the send (clock skew): 0


def _window(start: float, client: dict[str, int], server: dict[str, dict[str, int]] | None = None) -> HopWindow:
    return HopWindow(start_s=start, client=client, server=server or {})


def test_attribution_names_the_first_hop_short_and_counts_slow_sockets() -> None:
    client = {"sent": 100, "acked": 100, "expected": 300, "received": 280, "delivered": 280, "lost": 20}
    region = {"feed": 100, "fanout": 300, "written": 280, "dropped_slow": 20, "slow_sockets": 2}
    window = _window(0.0, client, {"region ap-southeast-1": region, "edge": {"relayed": 280}})
    verdict = attribute([window], has_server=True)
    assert verdict.first_hop == hc.WRITTEN and [x.count for x in verdict.losses] == [20]
    assert verdict.text == (
        "lost 20 of 300 deliveries: 20 fanned out by the region but never written to the socket "
        "(slow-socket drops: 2 sockets; frames lost: slow socket 20)"
    )


def test_late_receipts_are_said_to_be_late_not_dropped() -> None:
    client = {"acked": 5, "expected": 10, "received": 10, "delivered": 6, "lost": 4, "late": 4}
    server = {"region a": {"feed": 5, "fanout": 10, "written": 10}, "edge": {"relayed": 10}}
    verdict = attribute([_window(0.0, client, server)], has_server=True)
    assert verdict.first_hop is None
    assert verdict.text.endswith("4 of the lost arrived after the delivery timeout (late, not dropped)")


def test_feed_counts_once_per_region_and_frames_add_up() -> None:
    client = {"acked": 10, "expected": 20, "received": 20, "delivered": 20}
    server = {"region a": {"feed": 10, "fanout": 12, "written": 12}, "region b": {"feed": 10, "fanout": 8,
              "written": 8}, "edge": {"relayed": 20}}  # fmt: skip
    verdict = attribute([_window(0.0, client, server)], has_server=True)
    assert verdict.first_hop is None and verdict.lost == 0


def test_without_server_counts_no_hop_is_named() -> None:
    hops = DeliveryHops(windows=[_window(0.0, {"expected": 10, "delivered": 7, "lost": 3, "received": 7})])
    verdict = attribute_all(hops)[0]
    assert verdict.first_hop is None and verdict.lost == 3
    assert "exposes no per-hop counts" in verdict.text


def test_windows_still_in_flight_at_the_end_are_left_out() -> None:
    settled = _window(0.0, {"acked": 5, "expected": 5, "delivered": 5, "received": 5},
                      {"region a": {"feed": 5, "fanout": 5, "written": 5}})  # fmt: skip
    flying = _window(5.0, {"acked": 5, "expected": 5, "delivered": 2, "received": 2},
                     {"region a": {"feed": 5, "fanout": 5, "written": 5}})  # fmt: skip
    out = attribute_all(DeliveryHops(windows=[settled, flying], server_pieces=["region a"]))
    assert len(out) == 1 and out[0].first_hop is None
    assert "1 window(s) with 3 deliveries still in flight" in out[0].text


def test_fold_server_puts_seconds_into_windows() -> None:
    buckets = [{"t_s": t, "counts": {"relayed": n}} for t, n in ((12, 2), (14, 1), (15, 4))]
    windows = fold_server([_window(10.0, {"sent": 1})], "edge", buckets, 5.0)
    assert [(w.start_s, w.server) for w in windows] == [
        (10.0, {"edge": {"relayed": 3}}),
        (15.0, {"edge": {"relayed": 4}}),
    ]


def test_leg_rows_share_the_mean_and_name_the_dominant_leg() -> None:
    sketches = {leg: Sketch() for leg in ("commit", "client")}
    for v in (1.0, 2.0, 3.0):
        sketches["commit"].add(v)
        sketches["client"].add(10 * v)
    rows = leg_rows(sketches)
    assert [r.leg for r in rows] == ["commit", "client"]
    assert sum(r.share_pct or 0 for r in rows) == pytest.approx(100.0)
    dominant = dominant_leg(rows)
    assert dominant is not None and dominant.leg == "client"


def test_workers_ship_hops_and_the_master_merges_them() -> None:
    worker = ResultBuilder(window_s=5.0, worker="w1")
    legs = {(2, "commit"): Sketch()}
    legs[(2, "commit")].add(4.0)
    worker.record_hops({2: {"sent": 3, "acked": 3}}, legs)
    payload = worker.to_payload(reset=True)
    assert payload["v"] == PAYLOAD_VERSION == 5 and "hops" not in worker.to_payload()
    master = ResultBuilder(window_s=5.0)
    master.merge(json.loads(json.dumps(payload)))
    master.merge(payload)
    run = RunInfo(run_id="r", profile="p", started_s=0, ended_s=1, target="t", workers_expected=1, workers_seen=1)
    result = master.build(run)
    assert result.hops is not None
    assert result.hops.windows[0].start_s == 10.0 and result.hops.windows[0].client == {"sent": 6, "acked": 6}
    assert leg_sketches(result.hops)["commit"].count == 2
    again = parse_result(result.model_dump_json())
    assert again.hops == result.hops
    # A version-2 payload (no hops) and a 1.1 result (no hops section) still read.
    old = dict(payload, v=2)
    old.pop("hops")
    ResultBuilder(window_s=5.0).merge(old)
    data = json.loads(result.model_dump_json())
    data.pop("hops")
    data["schema_minor"] = 1
    assert parse_result(json.dumps(data)).hops is None
