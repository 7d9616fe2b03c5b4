"""Each locustfile under plain Locust, exactly as its docstring says to run it (`locust -f locustfiles/<name>.py
--headless ... --host <edge>`), in a subprocess against a real reference stack on loopback: Locust starts (no
duplicate user classes), requests are made, none fails, no user raised, exit code 0.

test_locustfiles.py runs the same user classes in-process and checks what they measure; this checks that the
files themselves load and run under the installed Locust (the newest release in CI's drift step)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILES = sorted(p.stem for p in (ROOT / "locustfiles").glob("*.py") if p.name != "__init__.py")
USERS = {"mixed": 8}
"""-u per locustfile (default 4): mixed.py needs a few users to start more than one class."""
RUN_S = 5
FAST = {
    "HARNESS_MEETING_STAY_S": "1.5",
    "HARNESS_MEETING_PING_INTERVAL_S": "0.3",
    "HARNESS_FILE_SIZES": "10KB:3,100KB:1",
}


@pytest.fixture(scope="module")
def stack() -> Iterator[ReferenceStack]:
    with ReferenceStack(StackConfig(ports=StackPorts.any(), health_interval_s=0.5)) as running:
        yield running


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.parametrize("name", LOCUSTFILES)
def test_plain_locust_runs_the_locustfile(name: str, stack: ReferenceStack, tmp_path: Path) -> None:
    assert {"files", "meetings", "messaging", "mixed", "web"} <= set(LOCUSTFILES)
    users = USERS.get(name, 4)
    # Plain Locust: nothing of a harness run (no HARNESS_PROFILE), no other target than --host (loopback: demo keys).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "SUPABASE_", "LOCUST_"))}
    env.update(FAST)
    args = [sys.executable, "-m", "locust", "-f", f"locustfiles/{name}.py", "--headless"]
    args += ["-u", str(users), "-r", str(users), "-t", f"{RUN_S}s", "--stop-timeout", "2"]
    args += ["--host", stack.endpoints.edge_url, "--csv", str(tmp_path / "x"), "--loglevel", "WARNING"]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_S + 55, check=False)
    output = (done.stdout + done.stderr)[-4000:]
    assert done.returncode == 0, output

    stats = _rows(tmp_path / "x_stats.csv")
    total = next(r for r in stats if r["Name"] == "Aggregated")
    assert int(total["Request Count"]) > 0, output
    assert int(total["Failure Count"]) == 0, output
    assert _rows(tmp_path / "x_failures.csv") == [], output
    assert _rows(tmp_path / "x_exceptions.csv") == [], output
