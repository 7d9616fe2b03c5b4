"""`harness dr failover`: promote the standby region and move traffic to it.

    check_standby ─► promote (its /_admin/promote, or --promote-cmd) ─► switch_<each switch> ─► verify_write
        ─► fence_old_primary (when it still answers as a primary: it follows the new one, so two primaries never
           take writes; when it does not answer, `harness dr failback` re-syncs it once it is back)

Refused (ActionRefused, exit 2, nothing changed) when the standby is unreachable or further behind than the limits,
unless --force. Idempotent: a standby that is already primary is not promoted again, a switch already pointing at it
does nothing, so a second run changes nothing (it still verifies a write). --dry-run journals what it would do.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.dr.actions import (
    ActionRefused,
    DrContext,
    Outcome,
    Steps,
    preflight_switches,
    run_action,
    switch_traffic,
    verify_write,
)
from harness.dr.hooks import run_hook
from harness.dr.regions import RegionStatus


@dataclass(frozen=True)
class LagLimits:
    max_bytes: int = 16 * 1024 * 1024
    """WAL received but not replayed; beyond it promotion waits long, or the replica is stuck."""
    max_s: float = 30.0


def _check_standby(status: RegionStatus, limits: LagLimits, force: bool, promote_cmd: str | None) -> str:
    if not status.reachable:
        if force and promote_cmd:
            return f"standby {status.region} unreachable ({status.error}); --force with --promote-cmd: going on"
        raise ActionRefused(
            f"standby {status.region} is unreachable ({status.error}): promoting it is impossible from here "
            "(with --promote-cmd, --force goes on anyway)"
        )
    if status.role == "primary":
        return f"{status.region} is already primary"
    behind = []
    if status.lag_bytes is not None and status.lag_bytes > limits.max_bytes:
        behind.append(f"{status.lag_bytes} bytes not replayed (limit {limits.max_bytes})")
    if status.lag_s is not None and status.lag_s > limits.max_s:
        behind.append(f"{status.lag_s:.1f} s behind (limit {limits.max_s:.0f} s)")
    if behind and not force:
        reasons = "; ".join(behind)
        raise ActionRefused(f"standby {status.region} is too far behind: {reasons}; --force to promote anyway")
    lag = f"lag {status.lag_bytes or 0} bytes, {status.lag_s or 0:.3f} s"
    return f"standby {status.region} reachable, {lag}" + (" (over the limits: --force)" if behind else "")


def _fence(ctx: DrContext, dry_run: bool) -> tuple[bool, str]:
    home, standby = ctx.topology.home, ctx.topology.standby
    status = ctx.admin.status(home)
    if not status.reachable:
        return False, f"{home.name} does not answer ({status.error}); `harness dr failback` re-syncs it when it is back"
    if status.role != "primary":
        return False, f"{home.name} is a {status.role}: nothing to fence"
    if dry_run:
        return False, f"would make {home.name} follow {standby.name} (it still answers as a primary)"
    answer = ctx.admin.demote(home, standby)
    return True, f"{home.name} now follows {standby.name} ({answer.get('method', '?')}): no second primary"


def failover(
    ctx: DrContext,
    *,
    force: bool = False,
    dry_run: bool = False,
    limits: LagLimits = LagLimits(),
    fence: bool = True,
) -> Outcome:
    def body(steps: Steps) -> None:
        standby = ctx.topology.standby
        with steps.step("check_standby") as step:
            status = ctx.admin.status(standby)
            step.detail = _check_standby(status, limits, force, ctx.promote_cmd)
            preflight_switches(ctx, dry_run)
        with steps.step("promote") as step:
            if status.role == "primary":
                step.detail = f"{standby.name} is already primary"
            elif dry_run:
                step.detail = f"would promote {standby.name}" + (" with --promote-cmd" if ctx.promote_cmd else "")
            elif ctx.promote_cmd:
                run_hook(ctx.promote_cmd, standby, "--promote-cmd")
                step.changed, step.detail = True, f"--promote-cmd promoted {standby.name}"
            else:
                ctx.admin.promote(standby)
                step.changed, step.detail = True, f"{standby.name} promoted (pg_promote)"
        switch_traffic(steps, standby, dry_run)
        verify_write(steps, dry_run)
        if fence:
            with steps.step("fence_old_primary") as step:
                step.changed, step.detail = _fence(ctx, dry_run)

    return run_action(ctx, "failover", dry_run, body)
