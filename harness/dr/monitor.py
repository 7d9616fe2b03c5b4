"""`harness dr monitor`: probe the primary every interval; after N failed rounds in a row, fail over.

    probe round (probe.py) ─ok─► failures = 0
                           └fail─► failures += 1 ─► failures ≥ N? ─► failover (under the action lock)
                                                                     ├ ok: probe the new primary from now on
                                                                     └ failed or refused: count N more, try again

Hysteresis: one lost round never fails over. After a failover there is nothing left to fail over to: the monitor
keeps probing and journaling (failback is an operator's decision, `harness dr failback`). One JSON line per round
and per action (journal.py). Runs until stopped (Ctrl-C, SIGTERM, `stop` set) or `max_rounds`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.dr.actions import DrContext, Outcome
from harness.dr.failover import LagLimits, failover
from harness.dr.lock import DrLock
from harness.dr.probe import Prober


@dataclass(frozen=True)
class MonitorSettings:
    interval_s: float = 5.0
    failures: int = 3
    """Failed rounds in a row that trigger a failover."""
    max_rounds: int | None = None
    """Stop after this many rounds (tests, bounded drills); None = until stopped."""
    force: bool = False
    limits: LagLimits = field(default_factory=LagLimits)


def monitor(
    ctx: DrContext,
    settings: MonitorSettings,
    *,
    stop: threading.Event | None = None,
    on_action: Callable[[Outcome], object] | None = None,
    prober: Prober | None = None,
) -> int:
    """Exit code: 0 when stopped with the product healthy or after a good failover, 1 when the last failover failed."""
    stop = stop or threading.Event()
    topology, journal = ctx.topology, ctx.journal
    primary = topology.home
    if ctx.admin.status(topology.standby).role == "primary":
        primary = topology.standby  # already failed over: watch the new primary, nothing to fail over to
    prober = prober or Prober(topology)
    failures, rounds, last_failed = 0, 0, False
    journal.write("monitor", step="start", primary=primary.name, interval_s=settings.interval_s,
                  failures=settings.failures)  # fmt: skip
    try:
        while not stop.is_set() and (settings.max_rounds is None or rounds < settings.max_rounds):
            started = time.monotonic()
            result = prober.probe(primary)
            rounds += 1
            failures = 0 if result.ok else failures + 1
            journal.write("probe", consecutive_failures=failures, **result.as_dict())
            if failures >= settings.failures and primary == topology.home:
                journal.write("monitor", step="decision", decision="failover", consecutive_failures=failures,
                              failed_checks=[c.name for c in result.checks if not c.ok])  # fmt: skip
                with DrLock(journal.state_dir, "action"):
                    outcome = failover(ctx, force=settings.force, limits=settings.limits)
                if on_action is not None:
                    on_action(outcome)
                last_failed = not outcome.ok
                failures = 0
                if outcome.ok:
                    primary = topology.standby
                    prober.canary.token = None  # the new primary signs the canary in afresh
            stop.wait(max(0.0, settings.interval_s - (time.monotonic() - started)))
    finally:
        prober.close()
        journal.write("monitor", step="stop", rounds=rounds, primary=primary.name)
    return 1 if last_failed else 0
