"""After the load: read the master's result.json (or an empty, partial one), add the smoke checks, network
fingerprints and the servers' delivery hop counts (hops.py), gate it and write the reports."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from harness.errors import ConfigError
from harness.gates.verdict import Verdict, evaluate
from harness.loadgen import env as hs
from harness.model.profile import Profile
from harness.model.result import NetworkConditions, Result, ResultBuilder, RunInfo, load_result
from harness.report import render_text, write_reports
from harness.run.hops import ServerHops, add_server_hops
from harness.run.smoke import CheckResult


@dataclass
class RunOutcome:
    verdict: Verdict
    result: Result
    out_dir: Path
    paths: dict[str, Path] = field(default_factory=dict)
    signal_exit: int | None = None
    """128 + the number of the signal that stopped the run (130: Ctrl-C); it wins over the verdict's code."""

    @property
    def exit_code(self) -> int:
        return self.signal_exit if self.signal_exit is not None else self.verdict.exit_code


def empty_result(run_id: str, profile: Profile, label: str, workers: int, reachable: bool) -> Result:
    now = time.time()
    run = RunInfo(
        run_id=run_id,
        profile=profile.name,
        started_s=now,
        ended_s=now,
        target=label,
        workers_expected=workers,
        workers_seen=0,
        partial=True,
        target_reachable=reachable,
    )
    return ResultBuilder(window_s=profile.window_s).build(run, profile.gates)


def collect(
    out_dir: Path,
    profile: Profile,
    run_id: str,
    target_label: str,
    workers: int,
    checks: list[CheckResult],
    interrupted: bool,
    log: TextIO,
    network_profiles: dict[str, str] | None = None,
    server_hops: ServerHops | None = None,
    networks: dict[str, NetworkConditions] | None = None,
) -> Result:
    result = _master_result(out_dir, log)
    if result is None:
        result = empty_result(run_id, profile, target_label, workers, reachable=True)
    smoke = [c.to_smoke_check() for c in checks]
    update: dict[str, Any] = {"smoke_checks": smoke, "partial": result.run.partial or interrupted}
    if network_profiles:
        update["network_profiles"] = {**result.run.network_profiles, **network_profiles}
    if networks:
        update["networks"] = {**result.run.networks, **networks}
    run = result.run.model_copy(update=update)
    return add_server_hops(result.model_copy(update={"run": run}), server_hops)


def _master_result(out_dir: Path, log: TextIO) -> Result | None:
    """result.json; else the master's last snapshot.json (a master killed by a second Ctrl-C writes no result);
    None when neither exists (the load never started) or they cannot be read (said on `log`)."""
    master_log = out_dir / "locust-master.log"
    for name in (hs.RESULT_FILE, hs.SNAPSHOT_FILE):
        path = out_dir / name
        if not path.exists():
            continue
        try:
            return load_result(path)
        except ConfigError as exc:
            print(f"harness: no result from the Locust master ({exc}); see {master_log}", file=log)
            return None
    if master_log.exists():
        print(f"harness: no result from the Locust master (no {hs.RESULT_FILE}); see {master_log}", file=log)
    return None


def report(result: Result, out_dir: Path, log: TextIO) -> RunOutcome:
    verdict = evaluate(result)
    paths = write_reports(result, out_dir, verdict=verdict, step_summary=os.environ.get("GITHUB_STEP_SUMMARY") or None)
    sys.stdout.write(render_text(verdict))
    print(f"harness: reports in {out_dir}/", file=log)
    return RunOutcome(verdict, result, out_dir, paths)


def print_checks(checks: list[CheckResult], log: TextIO) -> None:
    for c in checks:
        print(
            f"harness: check {'PASS' if c.passed else 'FAIL'}  {c.name}: {c.message} ({c.elapsed_ms:.0f} ms)", file=log
        )
