"""`harness dr failback`: make the home region (Singapore) the primary again, losing no acknowledged write.

    check_roles ─► check_home_stable (reachable for --stable-for) ─► resync (home follows the current primary:
    pg_rewind, or a fresh base backup) ─► caught_up ─► switchover (planned: the current primary holds writes,
    waits for home to replay everything, promotes it, then follows it) ─► switch_<each switch> ─► verify_write

Refused with the reason, nothing changed, when the standby is not the primary (there is nothing to fail back
from) or home has not been healthy for --stable-for. Idempotent: once home is primary again with the standby
following it, a second run only checks the switches and a write.
"""

from __future__ import annotations

import time

from harness.dr.actions import ActionRefused, DrContext, Outcome, Steps, run_action, switch_traffic, verify_write
from harness.dr.regions import RegionStatus
from harness.dr.topology import Region

STABLE_POLL_S = 1.0


def _wait_stable(ctx: DrContext, home: Region, stable_for_s: float) -> str:
    deadline = time.monotonic() + stable_for_s
    probes = 0
    while True:
        status = ctx.admin.status(home)
        probes += 1
        if not status.reachable:
            raise ActionRefused(
                f"home region {home.name} is not healthy ({status.error}); it must answer for --stable-for "
                f"{stable_for_s:.0f} s before failing back"
            )
        if time.monotonic() >= deadline:
            return f"{home.name} answered {probes} probes over {stable_for_s:.0f} s (role {status.role})"
        time.sleep(min(STABLE_POLL_S, max(0.0, deadline - time.monotonic())))


def _follows(status: RegionStatus, primary: Region) -> bool:
    return status.role == "replica" and status.primary_url == primary.url and bool(status.primary_reachable)


def _wait_caught_up(ctx: DrContext, home: Region, primary: Region, max_bytes: int, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        status = ctx.admin.status(home)
        if _follows(status, primary) and (status.lag_bytes or 0) <= max_bytes:
            return f"{home.name} streams from {primary.name}, {status.lag_bytes or 0} bytes to replay"
        if time.monotonic() >= deadline:
            raise ActionRefused(
                f"{home.name} did not catch up with {primary.name} within {timeout_s:.0f} s "
                f"(role {status.role}, lag {status.lag_bytes} bytes, {status.error or 'no error'})"
            )
        time.sleep(0.5)


def failback(
    ctx: DrContext,
    *,
    stable_for_s: float = 60.0,
    dry_run: bool = False,
    catch_up_timeout_s: float = 300.0,
    max_lag_bytes: int = 16 * 1024 * 1024,
) -> Outcome:
    home, standby = ctx.topology.home, ctx.topology.standby

    def body(steps: Steps) -> None:
        with steps.step("check_roles") as step:
            home_status, standby_status = ctx.admin.status(home), ctx.admin.status(standby)
            done = home_status.role == "primary" and _follows(standby_status, home)
            if done:
                step.detail = f"{home.name} is primary and {standby.name} follows it: nothing to fail back"
            elif not (standby_status.reachable and standby_status.role == "primary"):
                raise ActionRefused(
                    f"{standby.name} is not the primary (role {standby_status.role}, "
                    f"{standby_status.error or 'reachable'}): there is nothing to fail back from"
                )
            else:
                step.detail = f"{standby.name} is primary; {home.name}: role {home_status.role}"
        if not done:
            with steps.step("check_home_stable") as step:
                step.detail = _wait_stable(ctx, home, stable_for_s)
            with steps.step("resync") as step:
                home_status = ctx.admin.status(home)
                if _follows(home_status, standby):
                    step.detail = f"{home.name} already follows {standby.name}"
                elif dry_run:
                    step.detail = f"would make {home.name} follow {standby.name} (pg_rewind or base backup)"
                else:
                    answer = ctx.admin.demote(home, standby)
                    step.changed = True
                    step.detail = f"{home.name} follows {standby.name} after {answer.get('method', '?')}"
            if not dry_run:
                with steps.step("caught_up") as step:
                    step.detail = _wait_caught_up(ctx, home, standby, max_lag_bytes, catch_up_timeout_s)
            with steps.step("switchover") as step:
                if dry_run:
                    step.detail = f"would switch over from {standby.name} to {home.name} (writes held meanwhile)"
                else:
                    answer = ctx.admin.switchover(standby, home)
                    step.changed = True
                    step.detail = (
                        f"{home.name} promoted at LSN {answer.get('switchover_lsn', '?')} after "
                        f"{answer.get('caught_up_s', '?')} s; {standby.name} follows it ({answer.get('method', '?')})"
                    )
        switch_traffic(steps, home, dry_run)
        verify_write(steps, dry_run)

    return run_action(ctx, "failback", dry_run, body)
