"""SLO gates: a pure function from a `Result` and a `GatesConfig` to a `Verdict`. No I/O here.

    validity checks ──► any invalid ─► verdict "invalid" (exit 2)
    smoke checks    ──┐
    SLO gates       ──┴► any failed  ─► verdict "failed"  (exit 1), else "passed" (exit 0)

Fail closed: a gate whose data is missing is "invalid" (no requests at all) or "failed" (requests, but none
succeeded), never "passed". Throughput and percentiles use the steady-state windows (`steady_state_only`);
error rates, delivery losses and route shares use the whole run, so errors during the ramp still count.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from harness.model.metrics import (
    DELIVERY_NAME,
    DROPPED_SUFFIX,
    DUPLICATE_KIND,
    ITERATIONS,
    LOST_KIND,
    MEETING_JOIN_NAME,
    OBSERVATION_NAMES,
    RATE_SUFFIX,
)
from harness.model.profile import GatesConfig
from harness.model.result import Aggregate, ArrivalStat, Result, Span, arrival_totals, steady_windows
from harness.model.sketch import RELATIVE_ACCURACY

Status = Literal["passed", "failed", "invalid"]
Kind = Literal["validity", "smoke", "gate"]

EXIT_CODES: dict[Status, int] = {"passed": 0, "failed": 1, "invalid": 2}


_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class GateResult:
    name: str
    status: Status
    observed: float | None
    threshold: float | None
    bound: float | None
    """± error bound of `observed` (percentiles: the sketch's relative accuracy times the value)."""
    reason: str
    comparison: str = ""
    unit: str = ""
    kind: Kind = "gate"


@dataclass(frozen=True)
class Verdict:
    status: Status
    gates: list[GateResult] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def reasons(self) -> list[str]:
        return [f"{g.name}: {g.reason}" for g in self.gates if g.status != "passed"]


def fmt(value: float | None, unit: str = "") -> str:
    """Human figure: `1,234 ms`, `12.5 %`, `1,050 rps`."""
    if value is None:
        return "n/a"
    if unit == "%":
        text = f"{value:.2f}".rstrip("0").rstrip(".")
        return f"{text} %"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}".rstrip("0").rstrip(".")
    return f"{text} {unit}".rstrip()


def totals_excluded(cfg: GatesConfig) -> list[str]:
    """Request names left out of overall totals: the profile's `totals_exclude` plus `OBSERVATION_NAMES`."""
    return [*cfg.totals_exclude, *(n for n in OBSERVATION_NAMES if n not in cfg.totals_exclude)]


def evaluate(result: Result, config: GatesConfig | None = None) -> Verdict:
    """Every validity check, smoke check and configured gate, and the overall verdict."""
    cfg = config or result.gates or GatesConfig()
    whole = Span.of(result.windows, result.run.duration_s)
    steady = whole if not cfg.steady_state_only else Span.of(*steady_windows(result))
    gates: list[GateResult] = []
    gates += _validity(result, cfg, steady)
    gates += [
        GateResult(
            f"smoke.{c.name}", "passed" if c.passed else "failed", None, None, None, c.message or "ok", kind="smoke"
        )
        for c in result.run.smoke_checks
    ]
    gates += _slo_gates(cfg, steady, whole)
    gates += iteration_gates(result, cfg)
    statuses = {g.status for g in gates}
    status: Status = "invalid" if "invalid" in statuses else "failed" if "failed" in statuses else "passed"
    return Verdict(status, gates)


# ---- validity ----


def _validity(result: Result, cfg: GatesConfig, steady: Span) -> list[GateResult]:
    run, v = result.run, cfg.validity
    out = [
        _check("valid.target", run.target_reachable, "target reachable", "target unreachable"),
        _check("valid.complete", not run.partial, "run completed its planned shape", "run ended early (partial)"),
    ]
    ok = run.workers_seen >= run.workers_expected
    out.append(
        GateResult(
            "valid.workers",
            "passed" if ok else "invalid",
            run.workers_seen,
            run.workers_expected,
            None,
            f"{run.workers_seen} of {run.workers_expected} expected workers reported",
            ">=",
            kind="validity",
        )
    )
    out.append(_cpu_check(result, v.max_cpu_pct, v.max_cpu_time_pct, v.require_cpu_samples))
    n = steady.select(exclude_names=totals_excluded(cfg)).count
    if steady.duration_s <= 0:
        reason = "the steady-state window covers no complete time window"
        out.append(GateResult("valid.requests", "invalid", n, v.min_requests, None, reason, ">=", kind="validity"))
    else:
        ok = n >= v.min_requests and n > 0
        reason = f"{n:,} requests in the steady state" + ("" if ok else f" (at least {v.min_requests:,} needed)")
        out.append(
            GateResult(
                "valid.requests", "passed" if ok else "invalid", n, v.min_requests, None, reason, ">=", kind="validity"
            )
        )
    return out


def _check(name: str, ok: bool, good: str, bad: str) -> GateResult:
    return GateResult(name, "passed" if ok else "invalid", None, None, None, good if ok else bad, kind="validity")


def _cpu_check(result: Result, max_cpu_pct: float, max_time_pct: float, required: bool) -> GateResult:
    name = "valid.cpu"
    if not result.cpu:
        status: Status = "invalid" if required else "passed"
        return GateResult(name, status, None, max_time_pct, None, "no generator CPU samples", "<=", "%", "validity")
    per_worker: dict[str, list[float]] = {}
    for s in result.cpu:
        per_worker.setdefault(s.worker, []).append(s.cpu_pct)
    worst, worst_share = "", -1.0
    for worker, samples in sorted(per_worker.items()):
        share = 100.0 * sum(1 for c in samples if c > max_cpu_pct) / len(samples)
        if share > worst_share:
            worst, worst_share = worker, share
    ok = worst_share <= max_time_pct
    reason = f"busiest worker {worker_label(worst)}: above {max_cpu_pct:g} % CPU in {fmt(worst_share, '%')} of samples"
    return GateResult(
        name, "passed" if ok else "invalid", worst_share, max_time_pct, None, reason, "<=", "%", "validity"
    )


def worker_label(worker: str) -> str:
    return worker or "?"


# ---- SLO gates ----


def _slo_gates(cfg: GatesConfig, steady: Span, whole: Span) -> list[GateResult]:
    out: list[GateResult] = []
    excl = totals_excluded(cfg)
    total_steady = steady.select(exclude_names=excl)
    total_whole = whole.select(exclude_names=excl)
    if cfg.min_rps is not None:
        out.append(_value_gate("rps", total_steady.rps, ">", cfg.min_rps, "rps", total_steady.count))
    out += _latency(cfg.p95_ms, cfg.p99_ms, cfg.max_error_pct, "", total_steady, total_whole)
    for group, g in sorted(cfg.groups.items()):
        s = steady.select(exclude_names=excl, group=group)
        w = whole.select(exclude_names=excl, group=group)
        out += _latency(g.p95_ms, g.p99_ms, g.max_error_pct, f"group[{group}].", s, w)
    for name, g in sorted(cfg.requests.items()):
        s = steady.select(names={name})
        w = whole.select(names={name})
        out += _latency(g.p95_ms, g.p99_ms, g.max_error_pct, f"request[{name}].", s, w)
    out += _delivery(cfg, steady, whole)
    if cfg.meeting_join_p95_ms is not None:
        s = steady.select(names={MEETING_JOIN_NAME})
        out.append(_percentile_gate(f"{MEETING_JOIN_NAME}.p95", s, 0.95, cfg.meeting_join_p95_ms))
    for rs in cfg.route_share:
        # `user_class` is optional on the gate; getattr keeps this working with a RouteShareGate that lacks it.
        user_class = rs.user_class
        out.append(route_share(rs.group, rs.region, rs.min_pct, whole.select(group=rs.group), user_class))
    for d in cfg.delta:
        a = steady.select(exclude_names=excl, group=d.group)
        b = steady.select(exclude_names=excl, group=d.baseline)
        out.append(_delta(d.group, d.baseline, a, b, d.max_p95_delta_ms))
    return out


def iteration_gates(result: Result, cfg: GatesConfig) -> list[GateResult]:
    """Open model, per [arrival] class, over the steady state (`steady_state_only`) or the whole run: dropped
    iterations as a share of those due, and iterations started per second as a share of the target rate."""
    if not result.arrival:
        return []
    windows, duration_s = steady_windows(result) if cfg.steady_state_only else (result.windows, result.run.duration_s)
    totals = arrival_totals(windows)
    out: list[GateResult] = []
    for user_class, plan in sorted(result.arrival.items()):
        a = totals.get(user_class) or ArrivalStat(user_class=user_class)
        prefix = f"{ITERATIONS}[{user_class}]"
        if cfg.max_dropped_iterations_pct is not None:
            limit = cfg.max_dropped_iterations_pct
            dropped_pct = 100.0 * a.dropped / a.due if a.due else None
            g = _value_gate(f"{prefix}.{DROPPED_SUFFIX}", dropped_pct, "<=", limit, "%", a.due)
            if dropped_pct is None:
                g = _with_reason(g, f"no iterations of {user_class} due (is the locustfile's class running?)")
            else:
                g = _with_reason(
                    g, f"{g.reason} dropped ({a.dropped:,} of {a.due:,} due; {plan.max_users:,} users in the pool)"
                )
            out.append(g)
        if cfg.min_rate_achieved_pct is not None:
            floor = cfg.min_rate_achieved_pct
            achieved_pct = 100.0 * a.started / a.target if a.target > 0 else None
            g = _value_gate(f"{prefix}.{RATE_SUFFIX}", achieved_pct, ">=", floor, "%", round(a.target))
            if achieved_pct is None:
                g = _with_reason(g, f"no target rate for {user_class} in this stretch of the run")
            elif duration_s > 0:
                g = _with_reason(
                    g,
                    f"{g.reason} of the target rate ({fmt(a.started / duration_s, 'it/s')} started, target "
                    f"{fmt(a.target / duration_s, 'it/s')}; {a.completed:,} completed)",
                )
            out.append(g)
    return out


def _latency(
    p95_ms: float | None,
    p99_ms: float | None,
    max_error_pct: float | None,
    prefix: str,
    steady: Aggregate,
    whole: Aggregate,
) -> list[GateResult]:
    out = []
    if p95_ms is not None:
        out.append(_percentile_gate(f"{prefix}p95", steady, 0.95, p95_ms))
    if p99_ms is not None:
        out.append(_percentile_gate(f"{prefix}p99", steady, 0.99, p99_ms))
    if max_error_pct is not None:
        out.append(_value_gate(f"{prefix}error_rate", whole.error_pct, "<", max_error_pct, "%", whole.count))
    return out


def _percentile_gate(name: str, agg: Aggregate, q: float, threshold_ms: float) -> GateResult:
    label = f"p{round(q * 100)}"
    observed = agg.sketch.quantile(q)
    if observed is None:
        if agg.count == 0:
            return GateResult(name, "invalid", None, threshold_ms, None, "no requests", "<", "ms")
        reason = f"no successful responses ({agg.failure_count:,} failed)"
        return GateResult(name, "failed", None, threshold_ms, None, reason, "<", "ms")
    bound = RELATIVE_ACCURACY * observed
    ok = observed < threshold_ms
    reason = f"{label} {fmt(observed, 'ms')} ±{fmt(bound, 'ms')} {'' if ok else 'is not '}< {fmt(threshold_ms, 'ms')}"
    if abs(observed - threshold_ms) <= bound:
        reason += " (within the error bound of the threshold)"
    reason += f" over {agg.sketch.count:,} samples"
    return GateResult(name, "passed" if ok else "failed", observed, threshold_ms, bound, reason, "<", "ms")


def _value_gate(name: str, observed: float | None, op: str, threshold: float, unit: str, n: int) -> GateResult:
    if observed is None:
        reason = "no requests" if n == 0 else "no steady-state time to divide by"
        return GateResult(name, "invalid", None, threshold, None, reason, op, unit)
    ok = _OPS[op](observed, threshold)
    reason = f"{fmt(observed, unit)} {'' if ok else 'is not '}{op} {fmt(threshold, unit)}"
    return GateResult(name, "passed" if ok else "failed", observed, threshold, None, reason, op, unit)


def _delivery(cfg: GatesConfig, steady: Span, whole: Span) -> list[GateResult]:
    out: list[GateResult] = []
    if cfg.delivery_p95_ms is not None:
        s = steady.select(names={DELIVERY_NAME})
        out.append(_percentile_gate(f"{DELIVERY_NAME}.p95", s, 0.95, cfg.delivery_p95_ms))
    w = whole.select(names={DELIVERY_NAME})
    lost, dup = w.failures.get(LOST_KIND, 0), w.failures.get(DUPLICATE_KIND, 0)
    if cfg.delivery_max_loss_pct is not None:
        expected = w.count - dup  # every message once: delivered, or lost, or failed otherwise
        loss_pct = 100.0 * lost / expected if expected > 0 else None
        g = _value_gate(f"{DELIVERY_NAME}.loss", loss_pct, "<=", cfg.delivery_max_loss_pct, "%", expected)
        if g.observed is not None:
            g = _with_reason(g, f"{g.reason} ({lost:,} lost of {expected:,} messages)")
        out.append(g)
    if cfg.delivery_max_duplicates is not None:
        if w.count == 0:
            out.append(
                GateResult(
                    f"{DELIVERY_NAME}.duplicates",
                    "invalid",
                    None,
                    cfg.delivery_max_duplicates,
                    None,
                    "no delivery samples",
                    "<=",
                    "msgs",
                )
            )
        else:
            out.append(
                _value_gate(f"{DELIVERY_NAME}.duplicates", dup, "<=", cfg.delivery_max_duplicates, "msgs", w.count)
            )
    return out


def route_share(group: str, region: str, min_pct: float, whole: Aggregate, user_class: str | None = None) -> GateResult:
    """At least `min_pct` % of the group's responses (only `user_class`'s, when given) came from `region`.
    Named `route_share[<group>:<region>]`, or `route_share[<group>/<user class>:<region>]`."""
    who = f"{group}/{user_class}" if user_class else group
    name = f"route_share[{who}:{region}]"
    origins = whole.origins_by_class.get(user_class, {}) if user_class else whole.origins
    total = sum(origins.values())
    if total == 0:
        subject = f"user class {user_class} in group {group}" if user_class else f"group {group}"
        reason = f"no origin-region tallies for {subject}" + ("" if whole.count else " (no requests)")
        return GateResult(name, "invalid", None, min_pct, None, reason, ">=", "%")
    share = 100.0 * origins.get(region, 0) / total
    g = _value_gate(name, share, ">=", min_pct, "%", total)
    others = ", ".join(f"{r} {n:,}" for r, n in sorted(origins.items()) if r != region)
    return _with_reason(g, f"{g.reason} served by {region}" + (f" (others: {others})" if others else ""))


def _delta(group: str, baseline: str, a: Aggregate, b: Aggregate, max_delta_ms: float) -> GateResult:
    name = f"delta.p95[{group}-{baseline}]"
    pa, pb = a.sketch.quantile(0.95), b.sketch.quantile(0.95)
    if pa is None or pb is None:
        missing = group if pa is None else baseline
        empty = (a if pa is None else b).count == 0
        status: Status = "invalid" if empty else "failed"
        return GateResult(
            name, status, None, max_delta_ms, None, f"no successful samples in group {missing}", "<=", "ms"
        )
    delta, bound = pa - pb, RELATIVE_ACCURACY * (pa + pb)
    ok = delta <= max_delta_ms
    reason = (
        f"p95 {group} {fmt(pa, 'ms')} - {baseline} {fmt(pb, 'ms')} = {fmt(delta, 'ms')} ±{fmt(bound, 'ms')} "
        f"{'' if ok else 'is not '}<= {fmt(max_delta_ms, 'ms')}"
    )
    return GateResult(name, "passed" if ok else "failed", delta, max_delta_ms, bound, reason, "<=", "ms")


def _with_reason(g: GateResult, reason: str) -> GateResult:
    return GateResult(g.name, g.status, g.observed, g.threshold, g.bound, reason, g.comparison, g.unit, g.kind)
