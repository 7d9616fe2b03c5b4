"""A failover drill's measures, from what its rig recorded: detection, promotion, first write, RTO, RPO, lag,
duplicates, realtime reconnect, meeting re-join, error budget (docs/drills.md has the definitions).

RPO is looked up on whichever region is primary when the drill ends: every client id the ledger saw acknowledged
and that region does not hold is a lost message.
"""

from __future__ import annotations

import httpx

from harness.gates import drill as figures
from harness.model import keys
from harness.model.drill import Measure
from harness.model.drill_profile import DrillProfile
from harness.run.drill_rig import DrillRig


def new_primary_t(rig: DrillRig, fault_t: float) -> float:
    """From when writes go to the new primary: the promotion, or the fault when none was needed."""
    promoted = [e.t_s for e in rig.events if e.kind == "action" and e.label.startswith("failover promote")]
    return promoted[0] if promoted else fault_t


def realtime_back(rig: DrillRig, fault_t: float) -> float | None:
    return rig.realtime.back_after(rig.ledger.acked, new_primary_t(rig, fault_t))


def stored_ids(rig: DrillRig) -> tuple[set[str], str]:
    """Client ids of this drill's messages on whichever region is primary now (its name)."""
    status = {r.name: rig.ctx.admin.status(r) for r in (rig.topology.standby, rig.topology.home)}
    primary = next(
        (
            r
            for r in (rig.topology.standby, rig.topology.home)
            if status[r.name].reachable and status[r.name].role == "primary"
        ),
        None,
    )
    if primary is None:
        raise RuntimeError("no region answers as primary: the acknowledged messages cannot be checked")
    base = rig.stack.endpoints.replica_url if primary == rig.topology.standby else rig.topology.home.url
    key = keys.SERVICE_ROLE_KEY
    ids: set[str] = set()
    with httpx.Client(timeout=60, headers={"apikey": key, "Authorization": f"Bearer {key}"}) as http:
        for w in rig.ledger.writers:
            resp = http.get(
                f"{base}/rest/v1/messages", params={"select": "client_msg_id", "sender_id": f"eq.{w.user_id}"}
            )
            resp.raise_for_status()
            ids.update(str(row["client_msg_id"]) for row in resp.json())
    return ids, primary.name


def lag_before(rig: DrillRig, fault_t: float | None, window_s: int = 2) -> float | None:
    """The primary's worst replication lag in the seconds just before the fault."""
    if fault_t is None:
        return None
    return max((ms for t, ms in rig.recorder.lag_ms.items() if fault_t - window_s <= t <= fault_t), default=None)


def measures(
    rig: DrillRig, profile: DrillProfile, fault_t: float | None, lag_at_fault_ms: float | None, stored: set[str] | None
) -> list[Measure]:
    gates, samples = profile.gates, rig.recorder.samples()
    out: list[Measure] = []

    def after_fault(t: float | None) -> float | None:
        return None if t is None or fault_t is None else round(t - fault_t, 3)

    decision = next((e.t_s for e in rig.events if e.kind == "decision"), None)
    promote = next(
        (
            e.t_s
            for e in rig.events
            if e.kind == "action" and e.label.startswith("failover promote") and "FAILED" not in e.label
        ),
        None,
    )
    out.append(Measure("detect_s", after_fault(decision), "s", detail="fault → the monitor decides to fail over"))
    out.append(Measure("promote_s", after_fault(promote), "s", detail="fault → the standby is promoted"))
    first_failure = next((t for t in sorted(rig.ledger.write_failures) if fault_t is not None and t >= fault_t), None)
    if fault_t is not None and first_failure is None:
        first_write: float | None = 0.0
    else:
        first_write = after_fault(
            next(
                (t for t in sorted(rig.ledger.acked.values()) if first_failure is not None and t > first_failure), None
            )
        )
    out.append(Measure("first_write_s", first_write, "s", detail="fault → first acknowledged write through the edge"))
    rto = None if fault_t is None else figures.rto_s(samples, fault_t, profile.drill.hold_s, gates.error_pct)
    out.append(
        Measure(
            "rto_s",
            None if rto is None else round(rto, 3),
            "s",
            gates.rto_s,
            f"fault → every second's errors ≤ {gates.error_pct:g}% for {profile.drill.hold_s:g} s",
        )
    )
    if stored is None:
        out.append(Measure("rpo_messages", None, "messages", gates.rpo_messages, "the new primary could not be read"))
    else:
        missing = sorted(set(rig.ledger.acked) - stored)
        detail = (
            f"{len(missing)} of {len(rig.ledger.acked)} acknowledged messages missing; replication lag at the "
            f"fault {lag_at_fault_ms if lag_at_fault_ms is not None else '?'} ms; "
            f"{'synchronous' if profile.drill.synchronous_commit else 'asynchronous'} commit"
        )
        if missing:
            detail += f"; first missing: {', '.join(missing[:5])}"
        out.append(Measure("rpo_messages", float(len(missing)), "messages", gates.rpo_messages, detail))
    out.append(Measure("lag_at_fault_ms", lag_at_fault_ms, "ms", detail="the primary's replication lag just before"))
    out.append(
        Measure(
            "duplicates",
            float(rig.realtime.duplicates),
            "messages",
            0,
            "messages a realtime subscriber received twice (a resend keeps its client id)",
        )
    )
    reconnect = None if fault_t is None else after_fault(realtime_back(rig, fault_t))
    out.append(
        Measure(
            "realtime_reconnect_s",
            reconnect,
            "s",
            gates.realtime_reconnect_s,
            "fault → a message written to the new primary arrives over realtime (reconnect and rejoin included); "
            f"{rig.realtime.drops} reconnects"
            + (f"; last error: {rig.realtime.last_error}" if rig.realtime.last_error else ""),
        )
    )
    out.append(
        Measure(
            "meeting_rejoin_s",
            after_fault(rig.meeting.joined_at),
            "s",
            gates.meeting_rejoin_s,
            f"fault → a meeting joined (token through the edge, then LiveKit); {rig.meeting.attempts} "
            f"attempts{'; last error: ' + rig.meeting.last_error if rig.meeting.last_error else ''}",
        )
    )
    out.append(
        Measure(
            "error_pct",
            round(figures.error_pct(samples), 2),
            "%",
            gates.error_budget_pct,
            "failed requests over the whole drill (the error budget)",
        )
    )
    out.append(Measure("acknowledged", float(len(rig.ledger.acked)), "messages", detail="writes acknowledged"))
    return out
