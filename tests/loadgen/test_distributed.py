"""Distributed runs: `harness run … --master --expect-workers N` and `harness worker --master-host H` as separate
processes, as two pods or two compose services would run them, against the reference stack on loopback."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from loadgen_helpers import free_port_pair, harness_argv, write_profile

from harness.loadgen.cluster import ClusterConfig, WorkerGroup, free_port
from harness.model.result import load_result
from harness.run import shaping
from harness.run.bootstrap import PATH, TOKEN_VAR, BootstrapServer, WorkerConfigs, bootstrap_port

NO_RPS_GATE = "[gates]\nmin_rps = false\n"
RUN_PREFIXES = ("HARNESS_", "SUPABASE_", "LIVEKIT_", "DOMAIN_NAME", "TOXIPROXY_")


def _bare_env() -> dict[str, str]:
    """What a worker pod has: no target, no profile, no HARNESS_* settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(RUN_PREFIXES)}


def _master(tmp_path: Path, port: int, workers: int, *extra: str) -> subprocess.Popen[str]:
    profile = write_profile(tmp_path / "dist.toml", duration_s=6, extra=NO_RPS_GATE)
    return subprocess.Popen(
        harness_argv("run", str(profile), "--master", "--expect-workers", str(workers), "--master-bind", "127.0.0.1",
                     "--master-port", str(port), "--reports-dir", str(tmp_path), "--run-id", "dist", *extra),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _worker(port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        harness_argv("worker", "--master-host", "127.0.0.1", "--master-port", str(port), *extra),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_bare_env(),
    )  # fmt: skip


@pytest.mark.slow
def test_two_remote_workers_join_the_master_and_the_verdict_counts_both(tmp_path: Path) -> None:
    port = free_port_pair()
    master = _master(tmp_path, port, 2, "--print-result")
    workers = [_worker(port, "--connect-timeout", "90") for _ in range(2)]
    out, err = master.communicate(timeout=180)
    worker_logs = [w.communicate(timeout=60)[0] for w in workers]
    assert master.returncode == 0, err[-3000:]
    assert [w.returncode for w in workers] == [0, 0], worker_logs
    assert sorted(log.split(" joining")[0].rsplit(" ", 1)[1] for log in worker_logs) == ["worker-1", "worker-2"]
    result = load_result(tmp_path / "dist" / "result.json")
    assert (result.run.workers_expected, result.run.workers_seen) == (2, 2)
    assert {c.worker for c in result.cpu} == {"worker-1", "worker-2"}
    assert sum(s.count for w in result.windows for s in w.stats) > 0
    printed = out.split("--- harness result.json begin ---\n", 1)[1].split("\n--- harness result.json end ---")[0]
    assert json.loads(printed)["run"]["run_id"] == "dist"


@pytest.mark.slow
def test_too_few_workers_make_the_run_invalid(tmp_path: Path) -> None:
    port = free_port_pair()
    master = _master(tmp_path, port, 2, "--workers-wait", "8")
    worker = _worker(port, "--connect-timeout", "60")
    _, err = master.communicate(timeout=120)
    worker.communicate(timeout=60)
    assert master.returncode == 2, err[-2000:]
    summary = (tmp_path / "dist" / "summary.md").read_text()
    assert "| valid.workers | ⚠️ invalid | 0 | >= 2 | 0 of 2 expected workers reported |" in summary
    # The lone worker was let in and waited; the master never started the load without its second worker.


def test_a_worker_without_a_master_exits_2_naming_it() -> None:
    done = subprocess.run(
        harness_argv("worker", "--master-host", "127.0.0.1", "--master-port", str(free_port()),
                     "--connect-timeout", "2"),
        capture_output=True, text=True, timeout=60, env=_bare_env(), check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "no master at 127.0.0.1:" in done.stderr and "within 2 s" in done.stderr


def test_slots_follow_the_groups_then_refuse_and_shaped_groups_get_the_advertised_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "loc.py").write_text("# a locustfile\n", encoding="utf-8")
    profile = tmp_path / "profile-china.json"
    profile.write_text("{}", encoding="utf-8")
    monkeypatch.setenv(shaping.TOXIPROXY_ADVERTISE_HOST_VAR, "toxiproxy")
    china_url = f"http://{shaping.advertised('0.0.0.0:41234')}"
    assert china_url == "http://toxiproxy:41234"
    groups = (
        WorkerGroup("baseline", 1, {"SUPABASE_URL": "http://edge:54320"}),
        WorkerGroup("china", 1, {"SUPABASE_URL": china_url, "HARNESS_PROFILE": str(profile)}),
    )
    config = ClusterConfig(
        tmp_path / "loc.py", 2, "", tmp_path, {"SUPABASE_ANON_KEY": "k", "HARNESS_OUT_DIR": "/x"}, groups=groups
    )
    monkeypatch.setenv(TOKEN_VAR, "s3cret")
    port = free_port_pair()
    server = BootstrapServer(WorkerConfigs(config, port, {}), "127.0.0.1", bootstrap_port(port))
    url = f"http://127.0.0.1:{bootstrap_port(port)}{PATH}"
    auth = {"Authorization": "Bearer s3cret"}
    try:
        assert httpx.post(url, json={"name": "a"}).status_code == 401
        first = httpx.post(url, json={"name": "a"}, headers=auth).json()
        again = httpx.post(url, json={"name": "a"}, headers=auth).json()
        second = httpx.post(url, json={"name": "b"}, headers=auth).json()
        full = httpx.post(url, json={"name": "c"}, headers=auth)
    finally:
        server.stop()
    assert (first["group"], first["worker_name"], again["slot"]) == ("baseline", "baseline-1", 0)
    assert second["group"] == "china" and second["env"]["SUPABASE_URL"] == "http://toxiproxy:41234"
    assert second["files"]["HARNESS_PROFILE"] == {"name": "profile-china.json", "text": "{}"}
    assert second["env"]["SUPABASE_ANON_KEY"] == "k" and "HARNESS_OUT_DIR" not in second["env"]
    assert second["locustfiles"] == {"loc.py": "# a locustfile\n"}
    assert full.status_code == 409 and "all 2 have joined" in full.json()["error"]
