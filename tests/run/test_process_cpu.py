"""CPU per process role: a busy child and an idle child are told apart, and the steady-state means say so."""

from __future__ import annotations

import subprocess
import sys
import time

from harness.model.result import CpuSample, Result, RunInfo, SteadyState, process_cpu_means
from harness.run.proc_cpu import MACHINE, ProcessCpu, role_of

BUSY = "import time\nend = time.monotonic() + 3\nwhile time.monotonic() < end: pass"
IDLE = "import time; time.sleep(3)"


def test_role_names_come_from_the_command_line() -> None:
    assert role_of(["python", "-m", "harness.procs.launch", "x:y", "--name", "edge"]) == "edge"
    assert role_of(["python", "-m", "locust", "-f", "f.py", "--worker"]) == "locust-worker"
    assert role_of(["python", "-m", "locust", "-f", "f.py", "--master"]) == "locust-master"
    assert role_of(["/x/bin/postgres", "-D", "/tmp/s/ap-southeast-1/postgres"]) == "primary-postgres"
    assert role_of(["/x/bin/postgres", "-D", "/tmp/s/ap-northeast-1/postgres"]) == "replica-postgres"
    assert role_of(["sleep", "1"]) == "other"
    backend = ["postgres: authenticator postgres 127.0.0.1(4444) idle"]
    assert role_of(backend, "primary-postgres") == "primary-postgres (authenticator)"
    assert role_of(["postgres: walwriter"], "replica-postgres") == "replica-postgres"


def test_a_busy_child_is_measured_busy_and_an_idle_one_idle() -> None:
    busy = subprocess.Popen([sys.executable, "-c", BUSY, "--name", "busy"])
    idle = subprocess.Popen([sys.executable, "-c", IDLE, "--name", "idle"])
    try:
        sampler = ProcessCpu(interval_s=0.5).start()
        time.sleep(2.2)
        samples = sampler.stop()
    finally:
        for proc in (busy, idle):
            proc.kill()
            proc.wait()
    roles = {s.worker for s in samples}
    assert {"busy", "idle", MACHINE} <= roles
    now = time.time()
    result = Result(
        run=RunInfo(run_id="r", profile="p", started_s=now - 10, ended_s=now + 1, target="t", workers_expected=1,
                    workers_seen=1, steady_state=SteadyState(start_s=now - 10, end_s=now + 1)),
        window_s=5, process_cpu=samples,
    )  # fmt: skip
    means = process_cpu_means(result)
    assert means["busy"] > 50.0  # one spinning process: about one core, less when the machine is shared
    assert means["idle"] < 5.0
    assert means[MACHINE] >= means["busy"] * 0.8


def test_samples_outside_the_steady_state_are_left_out() -> None:
    run = RunInfo(run_id="r", profile="p", started_s=0, ended_s=100, target="t", workers_expected=1, workers_seen=1,
                  steady_state=SteadyState(start_s=10, end_s=20))  # fmt: skip
    samples = [CpuSample(t_s=5, worker="edge", cpu_pct=90), CpuSample(t_s=15, worker="edge", cpu_pct=30)]
    assert process_cpu_means(Result(run=run, window_s=5, process_cpu=samples)) == {"edge": 30}
