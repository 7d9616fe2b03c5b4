"""`harness run` end to end against a running reference stack: exit codes, distributed merges, Ctrl-C cleanup."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest
from loadgen_helpers import REST_READ, harness_argv, run_harness, write_profile

from harness.loadgen.cluster import free_port
from harness.model import keys
from harness.model.result import aggregate, load_result
from harness.model.sketch import Sketch
from tests.conftest import SlackReceiver

NO_RPS_GATE = "[gates]\nmin_rps = false\n"


def _junit_cases(path: Path) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in ET.parse(path).getroot().iter("testcase")}


@pytest.mark.slow
def test_two_workers_merge_into_the_same_sketch_as_their_raw_samples(tmp_path: Path, stack_env_file: Path) -> None:
    profile = write_profile(tmp_path / "merge.toml", extra=NO_RPS_GATE)
    done = run_harness(
        "run", str(profile), "--env-file", str(stack_env_file), "--workers", "2", "--locustfile", str(REST_READ),
        "--reports-dir", str(tmp_path), "--run-id", "merge",
        env={"HARNESS_SAMPLE_LOG": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    out = tmp_path / "merge"
    result = load_result(out / "result.json")
    assert (result.run.workers_expected, result.run.workers_seen, result.run.partial) == (2, 2, False)
    raw, count, per_worker = Sketch(), 0, {}
    for log in sorted(out.glob("samples-*.jsonl")):
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        per_worker[log.stem] = len(lines)
        count += len(lines)
        for sample in lines:
            if sample["ok"]:
                raw.add(sample["ms"])
    assert sorted(per_worker) == ["samples-worker-1", "samples-worker-2"] and all(per_worker.values())
    merged = aggregate(result.windows)
    assert merged.count == count
    assert merged.sketch == raw
    assert merged.sketch.quantiles([0.5, 0.95, 0.99]) == raw.quantiles([0.5, 0.95, 0.99])
    assert merged.origins == {"ap-southeast-1": count}  # every response tallied by the edge's origin header
    assert {c.worker for c in result.cpu} == {"worker-1", "worker-2"}
    assert (out / "locust_stats.csv").is_file() and (out / "report.html").is_file()


@pytest.mark.slow
def test_an_impossible_gate_exits_1_and_is_announced(
    tmp_path: Path, stack_env_file: Path, slack: SlackReceiver
) -> None:
    profile = write_profile(tmp_path / "impossible.toml", extra=NO_RPS_GATE + "p95_ms = 0.001\n")
    done = run_harness(
        "run", str(profile), "--env-file", str(stack_env_file), "--workers", "1", "--locustfile", str(REST_READ),
        "--reports-dir", str(tmp_path), "--run-id", "gate", "--slack-webhook", slack.url,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr + done.stdout
    # The failed gate reaches the Slack receiver: what, the figure and the report, never the webhook's secret path.
    assert len(slack.bodies) == 1, slack.bodies
    text = slack.bodies[0]["text"]
    assert "FAILED" in text and "p95" in text and "report.html" in text
    assert "xyzWebhookSecret42" not in text + done.stderr + done.stdout
    cases = _junit_cases(tmp_path / "gate" / "junit.xml")
    assert cases["p95"].find("failure") is not None
    assert cases["valid.requests"].find("error") is None


def test_a_dead_target_exits_2_and_still_reports_why(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "dead.toml")
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = run_harness("run", str(profile), "--host", url, "--reports-dir", str(tmp_path), "--run-id", "dead")
    assert done.returncode == 2
    assert "does not answer" in done.stderr
    error = _junit_cases(tmp_path / "dead" / "junit.xml")["valid.target"].find("error")
    assert error is not None and error.get("message") == "target unreachable"


def test_a_remote_target_needs_the_allow_list_or_confirmation(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "remote.toml")
    done = run_harness(
        "run", str(profile), "--host", "https://prod.example.com", "--reports-dir", str(tmp_path),
        env={"SUPABASE_ANON_KEY": keys.ANON_KEY, "HARNESS_ALLOW_HOSTS": ""},
    )  # fmt: skip
    assert done.returncode == 2
    assert "prod.example.com is not a loopback address" in done.stderr
    assert "HARNESS_ALLOW_HOSTS=prod.example.com" in done.stderr and "--confirm-remote" in done.stderr


def test_a_bad_duration_names_the_value_and_the_valid_form(tmp_path: Path) -> None:
    done = run_harness("smoke", "--duration", "5x", "--reports-dir", str(tmp_path))
    assert done.returncode == 2
    assert "--duration: '5x' is not a duration (e.g. 30s, 5m, 1h)" in done.stderr


def _wait_for(predicate, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def _running(out: Path) -> bool:
    try:
        progress = json.loads((out / "progress.json").read_text())
    except (OSError, ValueError):
        return False
    return progress.get("state") == "running" and progress.get("requests", 0) > 0


@pytest.mark.slow
def test_sigint_mid_run_leaves_no_child_and_writes_a_partial_report(tmp_path: Path, stack_env_file: Path) -> None:
    profile = write_profile(tmp_path / "long.toml", duration_s=120, users=2, extra=NO_RPS_GATE)
    out = tmp_path / "interrupted"
    argv = harness_argv(
        "run", str(profile), "--env-file", str(stack_env_file), "--workers", "2", "--locustfile", str(REST_READ),
        "--reports-dir", str(tmp_path), "--run-id", "interrupted",
    )  # fmt: skip
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _wait_for(lambda: _running(out), 40), "the run never reported traffic"
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 3  # master + 2 workers
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr  # 128 + SIGINT, after the partial report
    assert "SIGINT: stopping" in stderr
    assert _wait_for(lambda: not any(_alive(c) for c in children), 10), [c.pid for c in children if _alive(c)]
    result = load_result(out / "result.json")
    assert result.run.partial is True
    assert aggregate(result.windows).count > 0  # what was measured before Ctrl-C is kept
    error = _junit_cases(out / "junit.xml")["valid.complete"].find("error")
    assert error is not None and "partial" in (error.get("message") or "")
    assert "\r" not in stderr  # progress lines stay readable in CI logs


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
