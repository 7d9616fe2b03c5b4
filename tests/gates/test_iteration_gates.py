"""Open-model gates over a result's per-window iteration counts, and the counts' trip from worker to master."""

from __future__ import annotations

from harness.gates.verdict import evaluate
from harness.model.profile import Arrival, GatesConfig
from harness.model.result import ResultBuilder, RunInfo, SteadyState, arrival_totals, parse_result

T0 = 1_000.0


def _result(started_per_s: int, dropped_per_s: int, target_per_s: float, seconds: int = 10):  # type: ignore[no-untyped-def]
    worker = ResultBuilder(window_s=1.0, worker="w1")
    for i in range(seconds):
        t = T0 + i + 0.5
        worker.record("work", "GET", "baseline", 10.0, True, t)
        worker.record_cpu(t, 10.0)
        worker.record_arrival(t, "Open", target=target_per_s, started=started_per_s, dropped=dropped_per_s)
        worker.record_arrival(t, "Open", completed=started_per_s)
    master = ResultBuilder(window_s=1.0, worker="master")
    master.merge(worker.to_payload(reset=True))
    run = RunInfo(
        run_id="r", profile="p", started_s=T0, ended_s=T0 + seconds, target="t", workers_expected=1, workers_seen=1,
        steady_state=SteadyState(start_s=T0 + 2, end_s=T0 + seconds),
    )  # fmt: skip
    gates = GatesConfig(min_rps=None, max_dropped_iterations_pct=1, min_rate_achieved_pct=95)
    built = master.build(run, gates).model_copy(update={"arrival": {"Open": Arrival(rate=target_per_s, max_users=4)}})
    return parse_result(built.model_dump_json())  # and back through result.json


def _gate(result, name):  # type: ignore[no-untyped-def]
    return next(g for g in evaluate(result).gates if g.name == name)


def test_iterations_at_the_target_rate_pass_both_gates_with_their_figures() -> None:
    result = _result(started_per_s=40, dropped_per_s=0, target_per_s=40.0)
    assert arrival_totals(result.windows)["Open"].completed == 400
    assert evaluate(result).status == "passed"
    rate = _gate(result, "iterations[Open].rate")
    assert rate.observed == 100 and "40 it/s started, target 40 it/s" in rate.reason
    assert _gate(result, "iterations[Open].dropped").observed == 0


def test_dropped_iterations_and_a_missed_rate_fail_over_the_steady_state() -> None:
    result = _result(started_per_s=16, dropped_per_s=24, target_per_s=40.0)
    dropped = _gate(result, "iterations[Open].dropped")
    assert (dropped.status, dropped.observed) == ("failed", 60.0)
    assert "192 of 320 due; 4 users in the pool" in dropped.reason  # 8 steady windows of 24 dropped / 40 due
    rate = _gate(result, "iterations[Open].rate")
    assert (rate.status, rate.observed) == ("failed", 40.0)
    assert evaluate(result).exit_code == 1


def test_an_open_class_with_no_iterations_is_invalid_and_closed_runs_have_no_iteration_gates() -> None:
    result = _result(started_per_s=0, dropped_per_s=0, target_per_s=0.0)
    assert _gate(result, "iterations[Open].dropped").status == "invalid"
    assert _gate(result, "iterations[Open].rate").status == "invalid"
    closed = result.model_copy(update={"arrival": {}})
    assert not [g for g in evaluate(closed).gates if g.name.startswith("iterations")]


def test_a_result_without_arrival_fields_still_loads() -> None:
    old = _result(40, 0, 40.0).model_dump(mode="json")
    old.pop("arrival")
    old["schema_minor"] = 1
    for w in old["windows"]:
        w.pop("arrivals")
    import json

    loaded = parse_result(json.dumps(old))
    assert loaded.arrival == {} and all(w.arrivals == [] for w in loaded.windows)
