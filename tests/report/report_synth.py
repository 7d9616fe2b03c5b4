"""A synthetic two-group result (no Locust run needed) for the report tests."""

from __future__ import annotations

from harness.model.profile import GatesConfig, LatencyGate, RouteShareGate
from harness.model.result import GroupInfo, Result, ResultBuilder, RunInfo, SmokeCheck, SteadyState

T0 = 1_700_000_000.0

GATES = GatesConfig(
    min_rps=50,
    p95_ms=2000,
    max_error_pct=5,
    delivery_p95_ms=1000,
    groups={"china": LatencyGate(p95_ms=300)},  # china's p95 is ~600 ms: this gate fails
    route_share=[RouteShareGate(group="china", region="ap-northeast-1", min_pct=99)],
    meeting_join_p95_ms=3000,
)


def synthetic(latency_scale: float = 1.0, rps_per_group: int = 40, smoke_ok: bool = True) -> Result:
    b = ResultBuilder(5.0, worker="w1")
    for sec in range(60):
        for group, base_ms in (("baseline", 100.0), ("china", 400.0)):
            for k in range(rps_per_group):
                ok = k != 0 or sec % 10  # one failure every 10 s per group
                origin = "ap-northeast-1" if group == "china" else "ap-southeast-1"
                latency_ms = latency_scale * base_ms * (0.5 + k / rps_per_group)
                b.record("rest.select", "GET", group, latency_ms, bool(ok), T0 + sec + k / 100, origin_region=origin)
        b.record("message.delivery", "WS", "baseline", 80.0 + sec, True, T0 + sec)
        b.record("meeting.join", "WS", "china", 1200.0, True, T0 + sec)
        b.record_users(T0 + sec, min(200, 20 * sec))
        b.record_cpu(T0 + sec, 35.0)
    run = RunInfo(
        run_id="run-synthetic",
        profile="china",
        started_s=T0,
        ended_s=T0 + 60,
        target="reference",
        workers_expected=1,
        workers_seen=1,
        steady_state=SteadyState(start_s=T0 + 10, end_s=T0 + 55),
        groups={
            "china": GroupInfo(network="cn-telecom-peak-to-tokyo", country="CN"),
            "baseline": GroupInfo(network="baseline-lan"),
        },
        smoke_checks=[
            SmokeCheck(name="login", passed=smoke_ok, message="ok" if smoke_ok else "HTTP 401 from /auth/v1/token")
        ],
    )
    return b.build(run, GATES)
