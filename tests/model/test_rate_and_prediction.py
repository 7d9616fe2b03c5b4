"""The closed model's rate bound (model/rate_check.py), its preflight (run/rate_preflight.py), and the network
prediction (model/network_predict.py)."""

from __future__ import annotations

import io

import pytest

from harness.errors import ConfigError
from harness.model.breakdown import parts_of
from harness.model.network_predict import RTO_MIN_MS, group_p95, predict
from harness.model.profile import load_profile, parse_profile, resolve_profile
from harness.model.rate_check import ITERATIONS, check
from harness.model.result import NetworkConditions, ResultBuilder, RunInfo
from harness.network.profiles import load_stack
from harness.run.rate_preflight import check_rate

CLOSED = """
[load]
users = {users}
spawn_rate = 10
duration_s = 60
[scenarios]
MessagingUser = 1
[groups.far]
network = "cn-telecom-peak-to-tokyo"
[gates]
min_rps = {min_rps}
"""


def test_one_messaging_user_makes_at_most_one_request_per_think_time_plus_a_round_trip():
    profile = parse_profile(CLOSED.format(users=10, min_rps=1), "x.toml")
    result = check(profile, {"far": 1000.0})
    assert result.max_rps == pytest.approx(10 / (2.0 + 1.0))  # between(1, 3) → 2 s mean, plus 1 s RTT
    assert ITERATIONS["MessagingUser"].think_mean_s == 2.0


def test_the_shipped_china_profile_asks_for_a_rate_its_users_can_produce():
    profile = load_profile(resolve_profile("china"))
    network = load_stack(profile.groups["china"].network)
    result = check(profile, {"china": 2 * network.latency.one_way_ms})
    assert not result.impossible and not result.tight
    assert 150 < result.max_rps < 200  # a run measured 166 rps against this bound (docs/china.md)


def test_an_impossible_min_rps_is_refused_with_the_numbers_and_the_fixes():
    profile = parse_profile(CLOSED.format(users=10, min_rps=50), "x.toml")
    with pytest.raises(ConfigError) as err:
        check_rate(profile, {"far": load_stack("cn-telecom-peak-to-tokyo")}, io.StringIO())
    text = str(err.value)
    assert "gates.min_rps = 50" in text and "at most 5 requests/s" in text
    assert "far 10 users" in text and "RTT 210 ms" in text
    assert "load.users to at least" in text and "[arrival]" in text


def test_a_run_shrunk_with_users_or_a_default_min_rps_only_warns():
    log = io.StringIO()
    profile = parse_profile(CLOSED.format(users=10, min_rps=50), "x.toml")
    check_rate(profile, {}, log, users_overridden=True)
    default = parse_profile(CLOSED.format(users=10, min_rps=50).replace("min_rps = 50", "p95_ms = 2000"), "y.toml")
    check_rate(default, {}, log)  # min_rps defaults to 1,000
    assert log.getvalue().count("warning") == 2 and "the rps gate will fail" in log.getvalue()


def test_an_open_model_profile_is_not_bounded_by_the_closed_model():
    text = "[load]\nduration_s = 60\nspawn_rate = 10\n[arrival.MessagingUser]\nrate = 500\nmax_users = 50\n"
    open_profile = parse_profile(text + "[gates]\nmin_rps = 400\n", "open.toml")
    assert check(open_profile, {}).min_rps is None  # its rate is planned by [arrival], gated by iterations[…].rate
    check_rate(open_profile, {}, io.StringIO())  # nothing refused


NET = NetworkConditions(profile="p", rtt_ms=200.0, jitter_ms=0.0, down_kbps=1000.0, up_kbps=4000.0)


def _parts(wire: int = 0, sent: int = 0, new: bool = False):
    b = ResultBuilder(60.0)
    for i in range(100):
        b.record("get", "REST", "base", 10.0, True, 60.0 + i * 0.01, connect_ms=None, wait_ms=10.0, body_ms=0.0)
        b.record("get", "REST", "far", 300.0, True, 60.0 + i * 0.01, connect_ms=1.0 if new else None, wait_ms=299.0,
                 body_ms=0.0, wire_bytes=wire, sent_bytes=sent)  # fmt: skip
    run = RunInfo(run_id="r", profile="p", started_s=60, ended_s=120, target="t", workers_expected=1, workers_seen=1)
    return parts_of(b.build(run).windows)


def test_keep_alive_costs_one_round_trip_over_the_baseline():
    parts = _parts()
    pred = predict(parts[("far", "get")], parts[("base", "get")], NET)
    assert pred.kind == "keep-alive" and pred.round_trips_p50 == 1
    assert pred.p50_ms == pytest.approx(10.0 + 200.0, rel=0.01)
    assert pred.gap_p50_ms == pytest.approx(90.0, abs=4)


def test_new_connections_and_bytes_add_round_trips_and_transfer():
    parts = _parts(wire=125_000, sent=0, new=True)  # 125 kB at 1 Mbps = 1 s
    pred = predict(parts[("far", "get")], parts[("base", "get")], NET)
    assert pred.kind == "download" and pred.round_trips_p50 == 1  # Toxiproxy does not delay the TCP handshake
    assert pred.transfer_ms == pytest.approx(1000.0)
    assert pred.p50_ms == pytest.approx(10.0 + 200.0 + 1000.0, rel=0.01)
    https = predict(parts[("far", "get")], parts[("base", "get")], NET.model_copy(update={"tls": True}))
    assert https.round_trips_p50 == 2  # the TLS handshake is data: it pays the RTT


def test_applied_loss_adds_a_retransmission_timeout_to_the_p95():
    lossy = NET.model_copy(update={"loss_pct": 15.0, "loss_applied": True})
    parts = _parts()
    clean = predict(parts[("far", "get")], parts[("base", "get")], NET)
    pred = predict(parts[("far", "get")], parts[("base", "get")], lossy)
    assert pred.loss_hit_pct > 5
    assert pred.p95_ms - clean.p95_ms >= RTO_MIN_MS
    unapplied = predict(parts[("far", "get")], parts[("base", "get")], NET.model_copy(update={"loss_pct": 15.0}))
    assert unapplied.loss_hit_pct == 0 and unapplied.p95_ms == clean.p95_ms
    assert group_p95([parts[("far", "get")]], {"get": parts[("base", "get")]}, NET) == pytest.approx(210.0, rel=0.02)
