"""`harness deploy gate` on the reference stack: a "bad build" (the edge's build switch set to failing) is caught
and rolled back, and a good build passes; a failing apply stops before any gate."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import httpx
import pytest
from loadgen_helpers import run_harness, write_profile

from harness.model import keys


def _edge(stack_env_file: Path) -> str:
    env = dict(line.split("=", 1) for line in stack_env_file.read_text().splitlines() if "=" in line)
    return env["SUPABASE_URL"]


def _build(edge: str, build: str) -> str:
    return shlex.join([sys.executable, "-m", "harness", "target", "build", build, "--edge", edge])


def _current_build(edge: str) -> str:
    reply = httpx.get(f"{edge}/_edge/admin/build", headers={"Authorization": f"Bearer {keys.SERVICE_ROLE_KEY}"})
    return str(reply.json()["build"])


def _gate(tmp_path: Path, stack_env_file: Path, apply: str, rollback: str) -> tuple[int, str, dict]:  # type: ignore[type-arg]
    profile = write_profile(tmp_path / "gate.toml", duration_s=6, extra="[gates]\nmin_rps = false\n")
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
