"""Gates as pure, table-driven checks: each case changes one thing in a healthy run and names the gate it trips.

Missing data is never a pass: it is "invalid" (nothing measured) or "failed" (measured, nothing succeeded).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from harness.gates.verdict import evaluate, totals_excluded
from harness.model.profile import DeltaGate, GatesConfig, LatencyGate, RouteShareGate, Validity
from harness.model.result import Result, ResultBuilder, RunInfo, SmokeCheck, SteadyState

T0 = 1_700_000_000.0
DURATION_S = 60
PLATEAU = (10.0, 50.0)


@dataclass
class Shape:
    """What the synthetic run contains; each case tweaks a field."""

    rps_per_group: int = 30
    baseline_ms: float = 100.0
    china_ms: float = 400.0
    error_every: int = 0  # every n-th request fails (0 = none)
    error_in_ramp_only: bool = False
    ramp_slow_ms: float | None = None  # latency of requests during the ramp-up (outside the plateau)
    china_japan_share: float = 1.0
    origins: bool = True
    delivered: int = 100
    lost: int = 0
    duplicates: int = 0
    meeting_joins: int = 20
    cpu: list[float] | None = field(default_factory=lambda: [40.0] * 20)
    all_fail_group: str | None = None


def build(shape: Shape, **run: Any) -> Result:
    b = ResultBuilder(5.0, worker="w1")
    i = 0
    for sec in range(DURATION_S):
        t = T0 + sec
        in_plateau = PLATEAU[0] <= sec < PLATEAU[1]
        for group, base_ms in (("baseline", shape.baseline_ms), ("china", shape.china_ms)):
            for k in range(shape.rps_per_group):
                i += 1
                latency = base_ms * (0.5 + k / shape.rps_per_group)  # spread 0.5x .. 1.5x
                if shape.ramp_slow_ms is not None and not in_plateau:
                    latency = shape.ramp_slow_ms
                fail = shape.error_every and i % shape.error_every == 0
                if shape.error_in_ramp_only and in_plateau:
                    fail = False
                if shape.all_fail_group == group:
                    fail = True
                origin = None
                if shape.origins:
                    japan = group == "china" and k < shape.china_japan_share * shape.rps_per_group
                    origin = "ap-northeast-1" if japan else "ap-southeast-1"
                b.record("rest.select", "GET", group, latency, not fail, t + k / 100, origin_region=origin)
    for n in range(shape.delivered):
        b.record("message.delivery", "WS", "baseline", 50.0 + n, True, T0 + 10 + n * 0.4)
    for _ in range(shape.lost):
        b.record("message.delivery", "WS", "baseline", 0.0, False, T0 + 20, failure_kind="lost")
    for _ in range(shape.duplicates):
        b.record("message.delivery", "WS", "baseline", 60.0, False, T0 + 20, failure_kind="duplicate")
    for n in range(shape.meeting_joins):
        b.record("meeting.join", "WS", "baseline", 900.0 + n, True, T0 + 10 + n)
    for n, pct in enumerate(shape.cpu or []):
        b.record_cpu(T0 + n * 3, pct)
    info = dict(
        run_id="t",
        profile="test",
        started_s=T0,
        ended_s=T0 + DURATION_S,
        target="reference",
        workers_expected=1,
        workers_seen=1,
        steady_state=SteadyState(start_s=T0 + PLATEAU[0], end_s=T0 + PLATEAU[1]),
    )
    return b.build(RunInfo(**(info | run)))


GATES = GatesConfig(
    min_rps=50,
    p95_ms=2000,
    max_error_pct=5,
    delivery_p95_ms=1000,
    delivery_max_loss_pct=1,
    delivery_max_duplicates=0,
    meeting_join_p95_ms=3000,
    groups={"china": LatencyGate(p95_ms=1000), "baseline": LatencyGate(p95_ms=500)},
    requests={"rest.select": LatencyGate(p99_ms=1500, max_error_pct=5)},
    route_share=[RouteShareGate(group="china", region="ap-northeast-1", min_pct=99)],
    delta=[DeltaGate(group="china", baseline="baseline", max_p95_delta_ms=500)],
)


def cfg(**kw: Any) -> GatesConfig:
    return GATES.model_copy(update=kw)


@dataclass
class Case:
    id: str
    shape: Shape = field(default_factory=Shape)
    run: dict[str, Any] = field(default_factory=dict)
    gates: GatesConfig = GATES
    verdict: str = "passed"
    gate: str | None = None  # the gate that decides it
    gate_status: str | None = None
    reason: str | None = None  # a fragment of that gate's reason


CASES = [
    Case("healthy run passes"),
    Case(
        "no requests at all",
        Shape(rps_per_group=0, delivered=0, meeting_joins=0),
        verdict="invalid",
        gate="valid.requests",
        gate_status="invalid",
        reason="0 requests in the steady state",
    ),
    Case(
        "no requests means percentile gates are invalid, not passed",
        Shape(rps_per_group=0),
        verdict="invalid",
        gate="group[china].p95",
        gate_status="invalid",
        reason="no requests",
    ),
    Case(
        "missing worker",
        run={"workers_expected": 3, "workers_seen": 2},
        verdict="invalid",
        gate="valid.workers",
        gate_status="invalid",
        reason="2 of 3 expected workers",
    ),
    Case(
        "generator CPU saturated for 15 % of the run",
        Shape(cpu=[95.0] * 3 + [40.0] * 17),
        verdict="invalid",
        gate="valid.cpu",
        gate_status="invalid",
        reason="15 %",
    ),
    Case("generator CPU saturated for 10 % of the run is tolerated", Shape(cpu=[95.0] * 2 + [40.0] * 18)),
    Case(
        "no CPU samples",
        Shape(cpu=None),
        verdict="invalid",
        gate="valid.cpu",
        gate_status="invalid",
        reason="no generator CPU samples",
    ),
    Case(
        "no CPU samples allowed when configured",
        Shape(cpu=None),
        gates=cfg(validity=Validity(require_cpu_samples=False)),
    ),
    Case(
        "target unreachable",
        run={"target_reachable": False},
        verdict="invalid",
        gate="valid.target",
        gate_status="invalid",
    ),
    Case("partial run", run={"partial": True}, verdict="invalid", gate="valid.complete", gate_status="invalid"),
    Case(
        "plateau shorter than a window",
        run={"steady_state": SteadyState(start_s=T0 + 11, end_s=T0 + 14)},
        verdict="invalid",
        gate="valid.requests",
        gate_status="invalid",
        reason="covers no complete time window",
    ),
    Case(
        "p95 above the threshold",
        Shape(baseline_ms=1500, china_ms=2500),
        gates=cfg(groups={}, delta=[]),
        verdict="failed",
        gate="p95",
        gate_status="failed",
        reason="is not < 2,000 ms",
    ),
    Case("p95 prints its error bound", gate="p95", gate_status="passed", reason="±"),
    Case(
        "slow ramp-up is excluded from the steady-state p95",
        Shape(ramp_slow_ms=9000),
        gates=cfg(groups={}, delta=[], requests={}),
    ),
    Case(
        "without steady_state_only the ramp-up counts",
        Shape(ramp_slow_ms=9000),
        gates=cfg(groups={}, delta=[], requests={}, steady_state_only=False),
        verdict="failed",
        gate="p95",
        gate_status="failed",
    ),
    Case(
        "error rate above 5 % fails",
        Shape(error_every=19),
        verdict="failed",
        gate="error_rate",
        gate_status="failed",
        reason="5.22 % is not < 5 %",
    ),
    Case("error rate just below 5 % passes", Shape(error_every=21), gate="error_rate", gate_status="passed"),
    Case(
        "errors during the ramp-up still count",
        Shape(error_every=3, error_in_ramp_only=True),
        verdict="failed",
        gate="error_rate",
        gate_status="failed",
    ),
    Case(
        "throughput below the minimum",
        gates=cfg(min_rps=100),
        verdict="failed",
        gate="rps",
        gate_status="failed",
        reason="60.5 rps is not > 100 rps",
    ),  # 60 rest + 0.5 meeting joins
    Case(
        "per-group p95",
        Shape(china_ms=900),
        gates=cfg(delta=[]),
        verdict="failed",
        gate="group[china].p95",
        gate_status="failed",
    ),
    Case(
        "per-request p99",
        Shape(baseline_ms=1100, china_ms=1100),
        gates=cfg(groups={}, delta=[]),
        verdict="failed",
        gate="request[rest.select].p99",
        gate_status="failed",
    ),
    Case(
        "every request of a group failed: p95 fails, never passes",
        Shape(all_fail_group="china"),
        verdict="failed",
        gate="group[china].p95",
        gate_status="failed",
        reason="no successful responses",
    ),
    Case(
        "delivery loss",
        Shape(lost=5),
        verdict="failed",
        gate="message.delivery.loss",
        gate_status="failed",
        reason="5 lost of 105 messages",
    ),
    Case(
        "delivery duplicates",
        Shape(duplicates=1),
        verdict="failed",
        gate="message.delivery.duplicates",
        gate_status="failed",
    ),
    Case(
        "no delivery samples", Shape(delivered=0), verdict="invalid", gate="message.delivery.p95", gate_status="invalid"
    ),
    Case("no meeting joins", Shape(meeting_joins=0), verdict="invalid", gate="meeting.join.p95", gate_status="invalid"),
    Case(
        "route share below 99 %",
        Shape(china_japan_share=0.9),
        verdict="failed",
        gate="route_share[china:ap-northeast-1]",
        gate_status="failed",
        reason="others: ap-southeast-1",
    ),
    Case(
        "no origin tallies",
        Shape(origins=False),
        verdict="invalid",
        gate="route_share[china:ap-northeast-1]",
        gate_status="invalid",
        reason="no origin-region tallies",
    ),
    Case(
        "china vs baseline delta",
        gates=cfg(delta=[DeltaGate(group="china", baseline="baseline", max_p95_delta_ms=200)]),
        verdict="failed",
        gate="delta.p95[china-baseline]",
        gate_status="failed",
    ),
    Case(
        "delta against a group with no traffic",
        gates=cfg(delta=[DeltaGate(group="china", baseline="nobody", max_p95_delta_ms=200)]),
        verdict="invalid",
        gate="delta.p95[china-nobody]",
        gate_status="invalid",
    ),
    Case(
        "failed smoke check",
        run={"smoke_checks": [SmokeCheck(name="login", passed=False, message="HTTP 401")]},
        verdict="failed",
        gate="smoke.login",
        gate_status="failed",
        reason="HTTP 401",
    ),
    Case("invalid outranks failed", Shape(baseline_ms=3000), run={"partial": True}, verdict="invalid"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_gate_table(case: Case):
    verdict = evaluate(build(case.shape, **case.run), case.gates)
    by_name = {g.name: g for g in verdict.gates}
    assert verdict.status == case.verdict, verdict.reasons
    assert verdict.exit_code == {"passed": 0, "failed": 1, "invalid": 2}[case.verdict]
    if case.gate is not None:
        gate = by_name[case.gate]
        assert gate.status == case.gate_status, gate
        if case.reason:
            assert case.reason in gate.reason
    if case.verdict == "passed":
        assert all(g.status == "passed" for g in verdict.gates)


def test_percentile_gates_carry_the_sketch_bound():
    verdict = evaluate(build(Shape()), GATES)
    p95 = next(g for g in verdict.gates if g.name == "p95")
    assert p95.observed is not None and p95.bound == pytest.approx(0.01 * p95.observed)


def test_gates_recorded_in_the_result_are_used_by_default():
    result = build(Shape()).model_copy(update={"gates": cfg(min_rps=1000)})
    verdict = evaluate(result)
    assert {g.name for g in verdict.gates if g.status == "failed"} == {"rps"}


def test_default_gates_are_the_deployment_guides():
    result = build(Shape())
    names = {g.name: g for g in evaluate(result, GatesConfig()).gates}
    assert (names["rps"].threshold, names["rps"].comparison) == (1000, ">")
    assert (names["p95"].threshold, names["p95"].comparison) == (2000, "<")
    assert (names["error_rate"].threshold, names["error_rate"].comparison) == (5, "<")


def _is_pure(fn: Callable[..., Any]) -> None:
    result = build(Shape())
    before = result.model_dump_json()
    fn(result, GATES)
    assert result.model_dump_json() == before


def test_evaluate_does_not_change_the_result():
    _is_pure(evaluate)


def _with_classes(japan_share_by_class: dict[str, float], reordered: int = 0) -> Result:
    """The healthy run plus china responses labelled by user class, each class served by Japan at its share."""
    b = ResultBuilder(5.0, worker="w1")
    b.merge(ResultBuilder.from_payload(_payload_of(build(Shape()))))
    for user_class, share in japan_share_by_class.items():
        for k in range(100):
            origin = "ap-northeast-1" if k < share * 100 else "ap-southeast-1"
            b.record("rest.select", "GET", "china", 300.0, True, T0 + 20 + k / 10, origin, user_class=user_class)
    for k in range(reordered):  # failed ones too: a reordered receipt must never look like an error
        b.record("message.reordered", "DELIVERY", "baseline", 80.0, k % 2 == 0, T0 + 10 + k * 0.004)
    info = build(Shape()).run
    return b.build(info)


def _payload_of(result: Result) -> dict[str, Any]:
    """A builder payload holding `result`'s stats (to extend a built run with more samples)."""
    rows = [
        [round(w.start_s / result.window_s), s.name, s.request_type, s.group, s.count, s.failures, s.bytes,
         s.sketch.to_dict(), s.origins, s.origins_by_class]
        for w in result.windows for s in w.stats
    ]  # fmt: skip
    return {"v": 2, "worker": "w1", "window_s": result.window_s, "stats": rows}


def test_route_share_can_take_a_user_class() -> None:
    result = _with_classes({"WebUser": 1.0, "MessagingUser": 0.5})
    gates = [
        # A stand-in with `user_class`: harness/model/profile.py's RouteShareGate gains the field separately.
        SimpleNamespace(group="china", region="ap-northeast-1", min_pct=99, user_class=c)
        for c in ("WebUser", "MessagingUser", "MeetingUser", None)
    ]
    by_name = {g.name: g for g in evaluate(result, cfg(route_share=gates)).gates}
    web, messaging = (
        by_name["route_share[china/WebUser:ap-northeast-1]"],
        by_name["route_share[china/MessagingUser:ap-northeast-1]"],
    )
    assert (web.status, web.observed) == ("passed", 100.0)
    assert (messaging.status, messaging.observed) == ("failed", 50.0)
    assert "(others: ap-southeast-1 50)" in messaging.reason
    absent = by_name["route_share[china/MeetingUser:ap-northeast-1]"]
    assert (
        absent.status == "invalid"
        and absent.reason == "no origin-region tallies for user class MeetingUser in group china"
    )
    whole_group = by_name["route_share[china:ap-northeast-1]"]  # every china response, labelled or not
    assert whole_group.status == "failed" and whole_group.observed == pytest.approx(100 * (1800 + 150) / 2000)


def test_reordered_receipts_never_count_toward_totals_even_when_not_excluded() -> None:
    plain, noisy = build(Shape()), _with_classes({}, reordered=10_000)
    for gates in (cfg(), cfg(totals_exclude=[])):
        a = {g.name: g for g in evaluate(plain, gates).gates}
        b = {g.name: g for g in evaluate(noisy, gates).gates}
        for name in ("rps", "error_rate", "valid.requests", "p95", "group[baseline].p95"):
            assert b[name].observed == a[name].observed, name
    assert "message.reordered" in totals_excluded(GatesConfig(totals_exclude=[]))
    assert totals_excluded(GatesConfig()).count("message.reordered") == 1  # once, default or not
