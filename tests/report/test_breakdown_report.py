"""summary.md and report.html explain where the time went: the p95's top contributors, the legs, and for shaped
groups the network's prediction beside the measurement."""

from __future__ import annotations

from harness.model.profile import DeltaGate, GatesConfig
from harness.model.result import GroupInfo, NetworkConditions, ResultBuilder, RunInfo, SteadyState
from harness.report import write_reports

T0 = 1_700_000_000.0


def shaped_result(with_network: bool = True):
    b = ResultBuilder(5.0)
    for i in range(400):
        t = T0 + 5 + i * 0.1
        b.record("select", "REST", "baseline", 10.0, True, t, connect_ms=None, wait_ms=10.0, body_ms=0.0)
        b.record("select", "REST", "china", 215.0, True, t, connect_ms=None, wait_ms=215.0, body_ms=0.0)
        if i % 10 == 0:  # a big asset every second: 250 kB at 1 Mbps, the slow tail
            b.record("asset", "WEB", "baseline", 5.0, True, t, connect_ms=None, wait_ms=2.0, body_ms=3.0,
                     wire_bytes=250_000)  # fmt: skip
            b.record("asset", "WEB", "china", 2210.0, True, t, connect_ms=None, wait_ms=210.0, body_ms=2000.0,
                     wire_bytes=250_000)  # fmt: skip
        b.record_cpu(t, 30.0)
    run = RunInfo(
        run_id="shaped", profile="china", started_s=T0, ended_s=T0 + 50, target="reference", workers_expected=1,
        workers_seen=1, steady_state=SteadyState(start_s=T0 + 5, end_s=T0 + 45),
        groups={"china": GroupInfo(network="cn", country="CN"), "baseline": GroupInfo(network="baseline-lan")},
        networks={"china": NetworkConditions(profile="cn", rtt_ms=200, down_kbps=1000, up_kbps=4000, loss_pct=15)}
        if with_network else {},
    )  # fmt: skip
    gates = GatesConfig(min_rps=1, delta=[DeltaGate(group="china", baseline="baseline", max_p95_delta_ms=1200)])
    return b.build(run, gates)


def test_summary_names_the_tail_its_leg_and_the_networks_prediction(tmp_path):
    paths = write_reports(shaped_result(), tmp_path)
    summary = paths["summary"].read_text()
    assert "### Top contributors to the p95" in summary
    assert "group china: p95 2,2" in summary
    assert "### China, explained: group china on cn" in summary
    assert "`asset`, whose tail time is mostly its body leg" in summary
    assert "the 1000 kbps downstream cap (transfer predicted 2,000 ms)" in summary
    assert "Loss was not applied" in summary
    assert "| asset | download | " in summary  # the prediction table names the kind
    assert "delta.p95[china-baseline]" in summary  # the China vs baseline gate is reported
    html = paths["html"].read_text()
    assert "China, explained" in html and "Top contributors to the p95" in html


def test_an_unshaped_run_has_no_china_section(tmp_path):
    summary = write_reports(shaped_result(with_network=False), tmp_path)["summary"].read_text()
    assert "China, explained" not in summary and "Top contributors to the p95" in summary
