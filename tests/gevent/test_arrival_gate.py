"""The open model's gate on a worker, with greenlets standing in for users: slots go to idle users, a slot with
no idle user is dropped, a user killed while idle leaves the pool, and the target is booked per window."""

from __future__ import annotations

from types import SimpleNamespace

import gevent

from harness.loadgen.arrivals import ArrivalGate
from harness.model.rates import RateSchedule
from harness.model.result import ResultBuilder, RunInfo, arrival_totals


def _totals(builder: ResultBuilder):  # type: ignore[no-untyped-def]
    run = RunInfo(run_id="r", profile="p", started_s=0, ended_s=1, target="t", workers_expected=1, workers_seen=1)
    return arrival_totals(builder.build(run).windows)["Open"]


def test_slots_go_to_idle_users_and_the_rest_are_dropped() -> None:
    builder = ResultBuilder(window_s=1.0)
    gate = ArrivalGate("Open", RateSchedule.constant(10), 1.0, builder)
    user = SimpleNamespace()
    woken: list[int] = []

    def one_iteration() -> None:
        gate.wait(user)  # type: ignore[arg-type]
        woken.append(1)

    waiter = gevent.spawn(one_iteration)
    gevent.sleep(0)  # the user is idle now
    gate._hand_off(100.0)  # the first slot wakes it
    gate._hand_off(100.1)  # nobody idle: dropped
    waiter.join(timeout=1)
    assert woken == [1]
    idle = gevent.spawn(gate.wait, SimpleNamespace())
    gevent.sleep(0)
    idle.kill()  # killed while idle: it leaves the pool, so the next slot is dropped
    gate._hand_off(100.2)
    t = _totals(builder)
    assert (t.started, t.dropped, t.due) == (1, 2, 3)


def test_the_target_is_the_schedule_integral_split_at_window_boundaries() -> None:
    builder = ResultBuilder(window_s=1.0)
    gate = ArrivalGate("Open", RateSchedule.constant(10), 0.5, builder)  # half of 10/s on this worker
    gate._t0 = gate._booked = 100.5
    gate._book(102.0)
    run = RunInfo(run_id="r", profile="p", started_s=0, ended_s=1, target="t", workers_expected=1, workers_seen=1)
    by_window = {w.start_s: w.arrivals[0].target for w in builder.build(run).windows}
    assert by_window == {100.0: 2.5, 101.0: 5.0}
