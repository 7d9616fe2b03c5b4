"""The test users of one run: how many, created before the load (credentials.json, 0600) and removed after it on
every exit path unless kept."""

from __future__ import annotations

import contextlib
import math
import os
import re
from pathlib import Path
from typing import TextIO

from harness.errors import HarnessError
from harness.model.credentials import Credentials
from harness.model.profile import Profile
from harness.run.progress import say
from harness.run.target import Target
from harness.run.users import cleanup, provision
from harness.scenarios import settings as scenario_env
from harness.scenarios.settings import ScenarioSettings, whole_number

ACCOUNT_CLASSES = ("MessagingUser", "MeetingUser", "FileTransferUser")
"""User classes that play provisioned test users (WebUser needs none)."""
USERS_PREFIX = "loadtest"
"""Tag of every test user a run creates (`harness users cleanup --prefix loadtest` removes leftovers)."""
DEFAULT_GROUP_SIZE = ScenarioSettings().group_size
"""Members per provisioned block of users (the scenarios' default; HARNESS_GROUP_SIZE changes both)."""
CREDENTIALS_FILE = "credentials.json"


def needs_accounts(profile: Profile, fallback: bool) -> bool:
    """Whether the run's user classes play provisioned test users (the fallback load signs up its own)."""
    classes = set(profile.scenarios.weights()) | set(profile.arrival)  # closed- and open-model classes
    return not fallback and any(name in classes for name in ACCOUNT_CLASSES)


def users_needed(peak_users: int, workers: int, group_size: int) -> int:
    """Enough blocks for every worker's share of the peak plus one spare block each (harness/model/assign.py: a worker
    plays whole blocks, block b on worker b mod W)."""
    per_worker = math.ceil(max(peak_users, 1) / workers)
    return (math.ceil(per_worker / group_size) + 1) * group_size * workers


def configured_group_size() -> int:
    """HARNESS_GROUP_SIZE, read as the workers read it (scenarios.settings): both sides must cut users alike."""
    text = os.environ.get(scenario_env.GROUP_SIZE, "").strip()
    return whole_number(scenario_env.GROUP_SIZE, text, minimum=2, example="4") if text else DEFAULT_GROUP_SIZE


def users_tag(run_id: str) -> str:
    """The run id as a users tag: lowercase letters, digits and '-', at most 40 characters."""
    return re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")[:40] or "run"


def provision_for_run(
    target: Target, count: int, run_id: str, out_dir: Path, keep: bool, cleanup_stack: contextlib.ExitStack, log: TextIO
) -> Path:
    """Create the run's test users; their credentials go to out_dir/credentials.json (0600). Unless `keep`, the users
    and the file are removed when `cleanup_stack` unwinds, whatever the exit path."""
    assert target.config is not None
    group_size = configured_group_size()
    say(log, f"provisioning {count} test users ({USERS_PREFIX}.{users_tag(run_id)}.*) on {target.label}")
    credentials = provision(target.config, count, group_size, prefix=USERS_PREFIX, run_id=users_tag(run_id))
    path = out_dir / CREDENTIALS_FILE
    if keep:
        credentials.save(path)
        say(
            log,
            f"test users kept (--keep-users): {path}; remove them with `harness users cleanup --credentials {path}`",
        )
        return path
    cleanup_stack.callback(remove_users, target, credentials, path, log)
    credentials.save(path)
    return path


def remove_users(target: Target, credentials: Credentials, path: Path, log: TextIO) -> None:
    assert target.config is not None
    try:
        removed = cleanup(target.config, credentials)
        say(log, f"removed {removed.users} test users and {removed.conversations} conversations")
    except HarnessError as exc:  # best effort: the run's verdict matters more; the prefix finds leftovers
        say(log, f"warning: test users not removed ({exc}); run `harness users cleanup --prefix {USERS_PREFIX}`")
        return
    path.unlink(missing_ok=True)
