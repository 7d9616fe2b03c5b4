"""summary.md and report.html show the delivery attribution, the counts per hop and the latency legs."""

from __future__ import annotations

from pathlib import Path

from harness.model.hops import DeliveryHops, HopWindow, LegWindow, attribute_all
from harness.model.result import ResultBuilder, RunInfo
from harness.model.sketch import Sketch
from harness.report import write_reports


def _run() -> RunInfo:
    return RunInfo(run_id="r", profile="load", started_s=100, ended_s=110, target="t", workers_expected=1,
                   workers_seen=1)  # fmt: skip


def test_reports_say_where_deliveries_were_lost_and_which_leg_is_slowest(tmp_path: Path) -> None:
    client = {"sent": 10, "acked": 10, "expected": 30, "received": 23, "delivered": 23, "lost": 7}
    region = {"feed": 10, "fanout": 30, "written": 23, "dropped_slow": 7, "slow_sockets": 1}
    legs = {"commit": Sketch(), "feed": Sketch(), "client": Sketch()}
    for leg, ms in (("commit", 5.0), ("feed", 900.0), ("client", 2.0)):
        legs[leg].add(ms)
    hops = DeliveryHops(
        windows=[HopWindow(start_s=100.0, client=client, server={"region r": region, "edge": {"relayed": 23}})],
        legs=[LegWindow(start_s=100.0, legs=legs)],
        server_pieces=["edge", "region r"],
    )
    hops = hops.model_copy(update={"attribution": attribute_all(hops)})
    run = _run()
    result = ResultBuilder(5.0).build(run).model_copy(update={"hops": hops})
    paths = write_reports(result, tmp_path, write_result=False)
    summary = paths["summary"].read_text()
    assert "### Delivery by hop" in summary
    assert "lost 7 of 30 deliveries: 7 fanned out by the region but never written to the socket" in summary
    assert "slow-socket drops: 1 socket" in summary
    assert "| written | region r: frames written to sockets | 23 |" in summary
    assert "the largest p95 is message.delivery.feed" in summary
    html = paths["html"].read_text()
    assert "<h2>Delivery by hop</h2>" in html and "message.delivery.feed" in html


def test_reports_without_hops_have_no_section(tmp_path: Path) -> None:
    run = _run()
    paths = write_reports(ResultBuilder(5.0).build(run), tmp_path, write_result=False)
    assert "Delivery by hop" not in paths["summary"].read_text()
