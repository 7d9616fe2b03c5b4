"""`harness dr` on the command line: bad input is exit 2 with the reason, real AWS needs explicit consent, status
is JSON, an action on the real stack is one JSON line per step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.model import keys
from harness.refstack.stack import ReferenceStack


def _harness(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "AWS_", "HARNESS_"))}
    return subprocess.run([sys.executable, "-m", "harness", "dr", *args], capture_output=True, text=True,
                          timeout=120, env={**base, **(env or {})})  # fmt: skip


def test_missing_topology_is_exit_2_naming_the_flags(tmp_path: Path) -> None:
    done = _harness("failover", "--state-dir", str(tmp_path))
    assert done.returncode == 2
    assert "--home-url" in done.stderr and "--reference" in done.stderr


def test_a_remote_region_needs_confirm_remote(tmp_path: Path) -> None:
    env = {"SUPABASE_SERVICE_ROLE_KEY": "x" * 40, "SUPABASE_ANON_KEY": "y" * 40}
    done = _harness("status", "--home-url", "https://sg.example.com", "--standby-url", "http://127.0.0.1:9",
                    "--public-url", "http://127.0.0.1:9", "--state-dir", str(tmp_path), env=env)  # fmt: skip
    assert done.returncode == 2 and "--confirm-remote" in done.stderr
    assert "x" * 40 not in done.stderr + done.stdout


def test_route53_on_real_aws_needs_a_named_profile_and_consent(tmp_path: Path) -> None:
    done = _harness("failover", "--reference", "--switch", "route53", "--route53-zone-id", "Z1",
                    "--route53-record", "api.example.com", "--route53-set", "ap-southeast-1=sg",
                    "--route53-set", "ap-northeast-1=jp", "--state-dir", str(tmp_path),
                    env={"AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE12", "AWS_SECRET_ACCESS_KEY": "s" * 40})  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "--aws-profile" in done.stderr and "s" * 40 not in done.stderr


def test_status_and_failover_on_the_stack(stack: ReferenceStack, tmp_path: Path) -> None:
    e = stack.endpoints
    env = {"SUPABASE_SERVICE_ROLE_KEY": keys.SERVICE_ROLE_KEY, "SUPABASE_ANON_KEY": keys.ANON_KEY}
    where = ["--home-url", e.primary_url, "--standby-url", e.replica_url, "--public-url", e.edge_url,
             "--switch", "edge", "--state-dir", str(tmp_path)]  # fmt: skip
    status = _harness("status", *where, env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["primary"] == "ap-southeast-1"

    dry = _harness("failover", "--dry-run", *where, env=env)
    assert dry.returncode == 0 and "dry run" in dry.stderr
    done = _harness("failover", *where, env=env)
    assert done.returncode == 0, done.stderr
    steps = [json.loads(line) for line in done.stdout.splitlines()]
    assert [s["step"] for s in steps] == [
        "start",
        "check_standby",
        "promote",
        "switch_edge",
        "verify_write",
        "fence_old_primary",
        "end",
    ]
    assert all(s["ok"] for s in steps if s["step"] not in ("start",))
    assert keys.SERVICE_ROLE_KEY not in done.stdout + done.stderr
    assert json.loads(_harness("status", *where, env=env).stdout)["primary"] == "ap-northeast-1"
