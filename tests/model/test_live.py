"""The master's live tally (progress.json `live`): exact run totals from worker payloads, quantiles over the recent
windows only, the current rate, and a reader that refuses what it cannot trust."""

from __future__ import annotations

from harness.model.live import RATE_WINDOW_S, RECENT_S, REPORT_LAG_S, Live, LiveTally
from harness.model.result import ResultBuilder
from harness.model.sketch import Sketch

NOW = 1_700_000_000.0


def _payload(worker: str, samples: list[tuple[float, float, bool]], name: str = "home") -> dict[str, object]:
    b = ResultBuilder(window_s=5, worker=worker)
    for t_s, ms, ok in samples:
        b.record(name, "GET", "g", ms, ok, t_s, origin_region="ap-southeast-1", failure_kind=None if ok else "error")
    return b.to_payload(reset=True)


def test_two_workers_add_up_and_quantiles_cover_the_recent_windows_only() -> None:
    tally = LiveTally(window_s=5)
    recent_a = [(NOW - 3, float(ms), True) for ms in range(10, 110)]
    recent_b = [(NOW - 8, float(ms), True) for ms in range(200, 250)] + [(NOW - 8, 5.0, False)]
    old = [(NOW - RECENT_S - 60, 5000.0, True)] * 20
    tally.absorb(_payload("w1", recent_a + old), NOW)
    tally.absorb(_payload("w2", recent_b), NOW)
    live = Live.from_progress({"live": tally.snapshot(NOW)})
    assert live is not None
    (stat,) = live.stats
    assert (stat.count, stat.ok_count, stat.failures, stat.origins) == (171, 170, {"error": 1}, {"ap-southeast-1": 171})
    assert stat.ok_sum_ms == sum(ms for _, ms, ok in recent_a + recent_b + old if ok)
    expected = Sketch()
    for _, ms, ok in recent_a + recent_b:
        if ok:
            expected.add(ms)
    assert stat.recent == expected  # the old 5 s samples are in the totals, not in the quantiles
    later = Live.from_progress({"live": tally.snapshot(NOW + RECENT_S + 10)})
    assert later is not None and later.stats[0].recent is None and later.stats[0].count == 171


def test_the_rate_counts_requests_but_not_deliveries_by_the_windows_they_fall_in() -> None:
    tally = LiveTally(window_s=5)
    start = 1_700_000_000.0  # a window boundary
    assert tally.snapshot(start)["rps"] is None  # nothing yet
    for w in range(4):  # 50 requests (and 500 deliveries) in each 5-s window, reported in three uneven pieces
        for part in (10, 15, 25):
            tally.absorb(_payload("w1", [(start + 5 * w + 1, 10.0, True)] * part), start + 5 * w + 4)
        tally.absorb(_payload("w2", [(start + 5 * w + 2, 10.0, True)] * 500, name="message.delivery"), start + 5 * w)
    assert tally.snapshot(start + 5 + REPORT_LAG_S - 0.1)["rps"] is None  # the first window is not complete yet
    assert tally.snapshot(start + 5 + REPORT_LAG_S)["rps"] == 50 / 5  # one complete window so far
    rates = {tally.snapshot(start + 20 + REPORT_LAG_S + i / 2)["rps"] for i in range(10)}
    assert rates == {50 / 5}  # steady however the reports fell, deliveries left out
    assert tally.snapshot(start + 40 + REPORT_LAG_S)["rps"] == 0.0  # nothing over the last RATE_WINDOW_S
    assert RATE_WINDOW_S <= 15


def test_a_live_object_of_another_version_or_malformed_is_ignored() -> None:
    assert Live.from_progress(None) is None
    assert Live.from_progress({"state": "running"}) is None
    assert Live.from_progress({"live": {"v": 2, "t_s": NOW}}) is None
    assert Live.from_progress({"live": {"v": 1, "t_s": NOW, "stats": [{"name": "x"}]}}) is None
    bad_sketch = {"name": "x", "type": "GET", "group": "g", "count": 1, "recent": {"a": 0.5}}
    assert Live.from_progress({"live": {"v": 1, "t_s": NOW, "stats": [bad_sketch]}}) is None


def test_the_headline_counts_requests_as_the_gates_do_and_leaves_deliveries_out() -> None:
    tally = LiveTally(window_s=5)
    requests = [(NOW - 2, float(ms), True) for ms in range(1, 101)] + [(NOW - 2, 1.0, False)] * 4
    deliveries = [(NOW - 2, 9000.0, True)] * 300 + [(NOW - 2, 1.0, False)] * 50  # slow, and some lost
    tally.absorb(_payload("w1", requests), NOW - 1)
    tally.absorb(_payload("w1", deliveries, name="message.delivery"), NOW - 1)
    tally.snapshot(NOW - 1)
    tally.absorb(_payload("w2", [(NOW, 50.0, True)] * 20), NOW)
    tally.snapshot(NOW + 5 + REPORT_LAG_S)  # both windows (NOW - 5 to NOW + 5) complete
    head = tally.headline()
    assert head["requests"] == 124
    assert head["error_pct"] == 100.0 * 4 / 124
    assert head["rps"] == 124 / 10  # the 350 deliveries are not requests
    p95 = head["p95_ms"]
    assert p95 is not None and 90 <= p95 <= 101  # the deliveries' 9 s would dominate a p95 that counted them
