"""Commands given by the operator for deployments that promote or switch another way (Supabase's management API,
an RDS promotion, a load balancer's API): `--promote-cmd` and `--switch-cmd`.

The command runs through the shell with the region in its environment (HARNESS_DR_REGION, HARNESS_DR_REGION_URL);
exit 0 is success. Its output goes to stderr; only its exit code and last line reach the journal.
"""

from __future__ import annotations

import os
import subprocess
import sys

from harness.dr.journal import Journal
from harness.dr.switch import SwitchResult
from harness.dr.topology import Region

HOOK_TIMEOUT_S = 600


class HookFailed(Exception):
    pass


def run_hook(command: str, region: Region, what: str) -> str:
    env = {**os.environ, "HARNESS_DR_REGION": region.name, "HARNESS_DR_REGION_URL": region.url}
    try:
        done = subprocess.run(command, shell=True, env=env, capture_output=True, text=True, timeout=HOOK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise HookFailed(f"{what} command did not finish within {HOOK_TIMEOUT_S} s") from None
    sys.stderr.write(done.stdout + done.stderr)
    last = (done.stdout.strip().splitlines() or [""])[-1][:200]
    if done.returncode != 0:
        raise HookFailed(f"{what} command exited {done.returncode}" + (f": {last}" if last else ""))
    return last


class CommandSwitch:
    """`--switch-cmd`: idempotent through the journal's state (the region it last switched to)."""

    name = "command"

    def __init__(self, command: str, regions: dict[str, Region], journal: Journal) -> None:
        self.command = command
        self.regions = regions
        self.journal = journal

    def active_region(self) -> str | None:
        region = self.journal.state().get("command_switch_region")
        return str(region) if region else None

    def switch_to(self, region: str, *, dry_run: bool = False) -> SwitchResult:
        if self.active_region() == region:
            return SwitchResult(self.name, region, False, f"--switch-cmd already ran for {region}")
        if dry_run:
            return SwitchResult(self.name, region, False, f"would run --switch-cmd for {region}")
        last = run_hook(self.command, self.regions[region], "--switch-cmd")
        self.journal.set_state(command_switch_region=region)
        return SwitchResult(self.name, region, True, f"--switch-cmd ran for {region}" + (f": {last}" if last else ""))
