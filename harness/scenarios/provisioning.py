"""Provision and remove test users from a Locust process by running `harness users` as a child process.

`harness.run.users` speaks httpx, and httpx (through httpcore) imports trio when it is installed, which fails in a
gevent-patched process (`select.epoll` is gone). A child process keeps the Locust worker free of both, and it
reuses the CLI's target resolution, safety check and error messages unchanged.

    provision_users(url, count, group_size) ──► python -m harness users provision ... --out <tmp file>
    remove_users(url, path)                 ──► python -m harness users cleanup --credentials <tmp file>
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.errors import ConfigError, ProvisionError
from harness.model.credentials import Credentials

PROVISION_PREFIX = "loadtest"
TIMEOUT_BASE_S = 60.0
TIMEOUT_PER_USER_S = 0.1
"""Bound on a child's run: base plus per user (the local stack creates ~100 users/s; real GoTrue is slower)."""


def _run(args: list[str], timeout_s: float) -> None:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "harness", "users", *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ProvisionError(f"`harness users {args[0]}` did not finish within {timeout_s:.0f} s") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        detail = lines[-1].removeprefix("harness: error: ") if lines else f"exit code {done.returncode}"
        error = ConfigError if "SUPABASE_" in detail else ProvisionError
        raise error(f"provisioning test users: {detail}")


def provision_users(url: str, count: int, group_size: int) -> tuple[Credentials, Path]:
    """Create `count` users on `url` (keys from the environment, demo keys on loopback); the credentials and the
    0600 file holding them (remove it with `remove_users`)."""
    fd, name = tempfile.mkstemp(prefix="harness-credentials-", suffix=".json")
    os.close(fd)
    path = Path(name)
    path.unlink()  # `provision` creates it itself, 0600 from the start
    args = ["provision", "--count", str(count), "--group-size", str(group_size), "--prefix", PROVISION_PREFIX]
    try:
        _run([*args, "--out", str(path), "--target-url", url, "--confirm-remote"],
             TIMEOUT_BASE_S + count * TIMEOUT_PER_USER_S)  # fmt: skip
        return Credentials.load(path), path
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def remove_users(url: str, path: Path, count: int) -> None:
    """Remove the users (and their messages, conversations) of a credentials file, then the file."""
    try:
        _run(["cleanup", "--credentials", str(path), "--target-url", url, "--confirm-remote"],
             TIMEOUT_BASE_S + count * TIMEOUT_PER_USER_S)  # fmt: skip
    finally:
        path.unlink(missing_ok=True)
