"""`harness deploy gate` on the reference stack: a "bad build" (the edge's build switch set to failing) is caught
and rolled back, and a good build passes; a failing apply stops before any gate."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest
from loadgen_helpers import harness_argv, run_harness, write_profile

from harness.model import keys
from tests.conftest import SlackReceiver


def _edge(stack_env_file: Path) -> str:
    env = dict(line.split("=", 1) for line in stack_env_file.read_text().splitlines() if "=" in line)
    return env["SUPABASE_URL"]


def _build(edge: str, build: str) -> str:
    return shlex.join([sys.executable, "-m", "harness", "target", "build", build, "--edge", edge])


def _one_worker_profile(path: Path, duration_s: float) -> Path:
    """A short profile with one Locust worker (a gate run starts fewer processes) and no throughput gate."""
    write_profile(path, duration_s=duration_s, extra="[gates]\nmin_rps = false\n")
    path.write_text("workers = 1\n" + path.read_text(), encoding="utf-8")
    return path


def _current_build(edge: str) -> str:
    reply = httpx.get(f"{edge}/_edge/admin/build", headers={"Authorization": f"Bearer {keys.SERVICE_ROLE_KEY}"})
    return str(reply.json()["build"])


def _gate(tmp_path: Path, stack_env_file: Path, apply: str, rollback: str) -> tuple[int, str, dict]:  # type: ignore[type-arg]
    profile = _one_worker_profile(tmp_path / "gate.toml", duration_s=6)
    done = run_harness(
        "deploy", "gate", "--apply", apply, "--rollback", rollback, "--profile", str(profile),
        "--after-rollback", str(profile), "--env-file", str(stack_env_file), "--reports-dir", str(tmp_path),
        "--gate-id", "g", "--step-timeout", "60", timeout_s=240,
    )  # fmt: skip
    record = json.loads((tmp_path / "g" / "deploy-gate.json").read_text())
    return done.returncode, done.stderr, record


@pytest.mark.slow
def test_a_bad_build_is_caught_and_rolled_back(tmp_path: Path, stack_env_file: Path) -> None:
    edge = _edge(stack_env_file)
    try:
        code, err, record = _gate(tmp_path, stack_env_file, _build(edge, "failing"), _build(edge, "good"))
    finally:
        httpx.post(f"{edge}/_edge/admin/build", json={"build": "good"},
                   headers={"Authorization": f"Bearer {keys.SERVICE_ROLE_KEY}"})  # fmt: skip
    assert code == 1, err[-3000:]
    steps = [(s["name"].split(":")[0], s["exit_code"] == 0) for s in record["steps"]]
    assert steps == [("apply", True), ("gate", False), ("rollback", True), ("smoke-after-rollback", True)]
    assert "error_rate" in record["steps"][1]["detail"]  # every request answered 503 by the failing build
    assert "caught and rolled back" in record["outcome"]
    assert "[apply] edge build: failing" in err and "[rollback] edge build: good" in err
    assert "| rollback |" in (tmp_path / "g" / "deploy-gate.md").read_text()


@pytest.mark.slow
def test_a_good_build_passes_without_a_rollback(tmp_path: Path, stack_env_file: Path) -> None:
    edge = _edge(stack_env_file)
    code, err, record = _gate(tmp_path, stack_env_file, _build(edge, "good"), "echo rollback-ran")
    assert code == 0, err[-3000:]
    assert [s["name"].split(":")[0] for s in record["steps"]] == ["apply", "gate"]
    assert "rollback-ran" not in err and _current_build(edge) == "good"


def test_a_failing_apply_stops_before_any_gate(tmp_path: Path) -> None:
    done = run_harness("deploy", "gate", "--apply", "echo deploying; exit 3", "--rollback", "echo rollback-ran",
                       "--host", "http://127.0.0.1:9", "--reports-dir", str(tmp_path), "--gate-id", "a")  # fmt: skip
    assert done.returncode == 2
    assert "[apply] deploying" in done.stderr and "rollback-ran" not in done.stderr
    record = json.loads((tmp_path / "a" / "deploy-gate.json").read_text())
    assert [s["name"] for s in record["steps"]] == ["apply"] and record["steps"][0]["exit_code"] == 3


def test_the_gate_needs_an_explicit_target(tmp_path: Path) -> None:
    done = run_harness("deploy", "gate", "--apply", "true", env={"SUPABASE_URL": ""})
    assert done.returncode == 2 and "name the deployment to gate" in done.stderr


def _wait_for(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _running(progress: Path) -> bool:
    try:
        data = json.loads(progress.read_text())
    except (OSError, ValueError):
        return False
    return data.get("state") == "running" and data.get("requests", 0) > 0


def _start_gate(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], Path]:
    err = tmp_path / "gate.err"
    proc = subprocess.Popen(
        harness_argv("deploy", "gate", "--reports-dir", str(tmp_path), "--gate-id", "g", *args),
        stdout=subprocess.DEVNULL, stderr=err.open("w"), text=True,
    )  # fmt: skip
    return proc, err


@pytest.mark.slow
def test_ctrl_c_during_a_gate_run_ends_the_gate_without_a_rollback(tmp_path: Path, stack_env_file: Path) -> None:
    profile = _one_worker_profile(tmp_path / "long.toml", duration_s=60)
    proc, err = _start_gate(
        tmp_path, "--apply", "echo applied", "--rollback", "echo rollback-ran", "--profile", str(profile),
        "--env-file", str(stack_env_file),
    )  # fmt: skip
    try:
        assert _wait_for(lambda: _running(tmp_path / "g" / "g-2-long" / "progress.json"), 60), err.read_text()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(90)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = err.read_text()
    # A partial run's verdict is "invalid", which would otherwise read as a red release: it must not roll back.
    assert code == 130, out[-3000:]
    assert "rollback-ran" not in out
    record = json.loads((tmp_path / "g" / "deploy-gate.json").read_text())
    assert [(s["name"].split(":")[0], s["exit_code"]) for s in record["steps"]] == [("apply", 0), ("gate", 130)]
    assert record["steps"][1]["detail"].startswith("interrupted by SIGINT: partial run")
    assert record["exit_code"] == 130 and "not rolled back" in record["outcome"]
    assert (tmp_path / "g" / "g-2-long" / "report.html").is_file()  # the interrupted run still reported


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_a_command_stops_its_processes_and_is_recorded(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    pid_file = tmp_path / "child.pid"
    apply = f"sleep 120 & echo $! > {shlex.quote(str(pid_file))}; echo started; wait"
    proc, err = _start_gate(
        tmp_path, "--apply", apply, "--rollback", "echo rollback-ran", "--host", "http://127.0.0.1:9"
    )
    try:
        assert _wait_for(lambda: "[apply] started" in err.read_text(), 30), err.read_text()
        child = int(pid_file.read_text())
        proc.send_signal(sig)
        assert proc.wait(30) == code, err.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    # The command's whole process group is stopped (a deploy tool left running would keep changing things).
    assert _wait_for(lambda: not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie", 10)
    out = err.read_text()
    assert "rollback-ran" not in out and "Traceback" not in out
    record = json.loads((tmp_path / "g" / "deploy-gate.json").read_text())
    assert [(s["name"], s["exit_code"]) for s in record["steps"]] == [("apply", code)]
    assert sig.name in record["steps"][0]["detail"] and "not rolled back" in record["outcome"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "smoke,smok", "--host", "http://127.0.0.1:9"], "smok"),
        (["--after-rollback", "nope", "--host", "http://127.0.0.1:9"], "nope"),
        (["--env-file", "/nonexistent/production.env"], "/nonexistent/production.env"),
        (["--host", "https://prod.example.com"], "prod.example.com is not a loopback address"),
        (["--gate-id", "g" * 90, "--host", "http://127.0.0.1:9"], "--gate-id"),
    ],
)
def test_a_mistake_in_the_gate_is_refused_before_the_release_is_applied(
    tmp_path: Path, args: list[str], message: str
) -> None:
    # Found only after --apply, a typo would fail the gate run and roll back a release nobody tested.
    done = run_harness(
        "deploy", "gate", "--apply", "echo applied", "--rollback", "echo rollback-ran",
        "--reports-dir", str(tmp_path), *args, env={"HARNESS_ALLOW_HOSTS": "", "SUPABASE_ANON_KEY": keys.ANON_KEY},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "applied" not in done.stderr and "rollback-ran" not in done.stderr


def test_secrets_in_commands_and_their_output_are_not_echoed(tmp_path: Path) -> None:
    env_file = tmp_path / "production.env"
    env_file.write_text(
        f"SUPABASE_URL=http://127.0.0.1:9\nSUPABASE_ANON_KEY={keys.ANON_KEY}\n"
        f"SUPABASE_SERVICE_ROLE_KEY={keys.SERVICE_ROLE_KEY}\nLIVEKIT_URL=ws://127.0.0.1:9\n"
        "LIVEKIT_API_KEY=devkey\nLIVEKIT_API_SECRET=plain-livekit-secret-0042\n",
        encoding="utf-8",
    )
    apply = f"cat {shlex.quote(str(env_file))}; echo deploying with password=hunter2hunter2; exit 3"
    done = run_harness(
        "deploy", "gate", "--apply", apply, "--env-file", str(env_file), "--reports-dir", str(tmp_path),
        "--gate-id", "s",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "[apply] deploying with password=***" in done.stderr  # the output still streams, redacted
    written = [(tmp_path / "s" / name).read_text() for name in ("deploy-gate.md", "deploy-gate.json")]
    for text in [done.stderr, done.stdout, *written]:
        for secret in ("hunter2hunter2", "plain-livekit-secret-0042", keys.SERVICE_ROLE_KEY, keys.ANON_KEY):
            assert secret not in text


def test_a_background_process_left_by_a_command_does_not_hold_the_gate(tmp_path: Path) -> None:
    pid_file = tmp_path / "bg.pid"
    apply = f"sleep 120 & echo $! > {shlex.quote(str(pid_file))}; echo deployed; exit 3"
    try:
        done = run_harness(
            "deploy", "gate", "--apply", apply, "--host", "http://127.0.0.1:9", "--reports-dir", str(tmp_path),
            "--gate-id", "b", "--step-timeout", "100", timeout_s=60,
        )  # fmt: skip
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    # The step ends with its shell (exit 3), not when the background sleep, which still holds the output pipe, ends.
    assert done.returncode == 2, done.stderr
    record = json.loads((tmp_path / "b" / "deploy-gate.json").read_text())
    assert record["steps"][0]["exit_code"] == 3 and record["steps"][0]["detail"] == "exit 3"


def test_a_gate_that_is_not_green_is_announced(tmp_path: Path, slack: SlackReceiver) -> None:
    done = run_harness(
        "deploy", "gate", "--apply", "exit 4", "--host", "http://127.0.0.1:9", "--reports-dir", str(tmp_path),
        "--gate-id", "al", "--slack-webhook", slack.url,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert len(slack.bodies) == 1, slack.bodies
    text = slack.bodies[0]["text"]
    assert "FAILED deploy gate error at http://127.0.0.1:9: apply failed" in text and "deploy-gate.md" in text
    assert "xyzWebhookSecret42" not in text + done.stderr + done.stdout
