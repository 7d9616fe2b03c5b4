"""Failover drill figures on this machine: each fault with a synchronous replica, and kill with an asynchronous one.

    for each case (each fault with a synchronous replica; kill with an asynchronous one; kill with either behind a
    20 KB/s replication link): run_failover_drill (the reference stack, 16 writers + 4 readers through the edge,
    the DR monitor probing every 1 s, failover after 3 failed rounds) ─► detect, promote, first write, RTO, RPO,
    lag at the fault, realtime reconnect, meeting re-join, requests/s before the fault

Bounded: every drill stops by itself (recovered and held for --hold seconds, or --max-duration). Prints a markdown
table for docs/BENCHMARKS.md.

    python bench/bench_drill.py                  # about 5 minutes
    python bench/bench_drill.py --hold 10 --cases kill-sync
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

from harness.model.drill import DrillResult
from harness.model.drill_profile import load_drill_profile
from harness.run.drill import run_failover_drill
from harness.run.drill_rig import DrillOptions

CASES = {"kill-sync": ("kill", True, None), "partition-sync": ("partition", True, None),
         "slow-sync": ("slow", True, None), "kill-async": ("kill", False, None),
         "kill-async-20kbps": ("kill", False, 20), "kill-sync-20kbps": ("kill", True, 20)}  # fmt: skip
"""case → (fault, synchronous commit, replication link KB/s): the last two ship WAL through a 20 KB/s link."""
COLUMNS = ("detect_s", "promote_s", "first_write_s", "rto_s", "rpo_messages", "lag_at_fault_ms",
           "realtime_reconnect_s", "meeting_rejoin_s", "error_pct", "acknowledged")  # fmt: skip


def _rps_before_fault(result: DrillResult) -> float:
    fault = next(e.t_s for e in result.events if e.kind == "fault")
    steady = [s.sent for s in result.timeline if 1 <= s.t_s < int(fault)]
    return sum(steady) / len(steady) if steady else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--hold", type=float, default=30.0)
    parser.add_argument("--max-duration", type=float, default=180.0)
    args = parser.parse_args()
    base = load_drill_profile("drill")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-drill-") as tmp:
        for case in args.cases:
            fault, sync, kbps = CASES[case]
            drill = base.drill.model_copy(update={"fault": fault, "synchronous_commit": sync, "hold_s": args.hold,
                                                   "max_duration_s": args.max_duration,
                                                   "replication_kbps": kbps})  # fmt: skip
            gates = base.gates.model_copy(update={"rpo_messages": 0 if sync else None})
            profile = base.model_copy(update={"drill": drill, "gates": gates})
            result, _ = run_failover_drill(profile, DrillOptions(reports_dir=Path(tmp), run_id=case), log=io.StringIO())
            values = {m.name: m.value for m in result.measures}
            rows.append((case, _rps_before_fault(result), [values.get(c) for c in COLUMNS], result.exit_code))
            print(f"{case}: exit {result.exit_code}", flush=True)
    print("\n| case | req/s before | " + " | ".join(COLUMNS) + " | exit |")
    print("|---" * (len(COLUMNS) + 3) + "|")
    for case, rps, values, code in rows:
        cells = ["—" if v is None else f"{v:g}" for v in values]
        print(f"| {case} | {rps:.0f} | " + " | ".join(cells) + f" | {code} |")


if __name__ == "__main__":
    main()
