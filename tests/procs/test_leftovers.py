"""What a killed process leaves behind (harness/procs/leftovers.py): real processes record temporary directories,
one is killed with SIGKILL (no cleanup runs), and a later reap removes its leftovers and only those."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.procs import leftovers

_MAKER = """
import json, sys, time
from harness.procs import leftovers
path = leftovers.temporary_directory("harness-test-")
(path / "data").write_text("x")
print(json.dumps({"dir": str(path)}), flush=True)
time.sleep(600)
"""

_STACK = """
import json, time
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts
stack = ReferenceStack(StackConfig(ports=StackPorts.any(), pieces=("primary",))).start()
print(json.dumps({"dir": str(stack._tmp), "url": stack.endpoints.primary_url}), flush=True)
time.sleep(600)
"""


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state directory and a temporary-files root of this test's own (children inherit both)."""
    folder, scratch = tmp_path / "state", tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv(leftovers.STATE_DIR_VAR, str(folder))
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR in this process too
    return folder


class Maker:
    """A child process running `code`, which prints one JSON line once it has made what it makes."""

    def __init__(self, code: str, timeout_s: float = 60.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env={**os.environ}
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # bounded: the child prints within seconds or dies
        assert line, f"the child exited ({self.process.wait(timeout_s)}) before making anything"
        self.made = json.loads(line)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.kill()


@pytest.fixture
def makers() -> Iterator[list[Maker]]:
    started: list[Maker] = []
    yield started
    for maker in started:
        maker.stop()


def test_a_killed_owners_directory_is_removed_and_a_running_owners_kept(state: Path, makers: list[Maker]) -> None:
    dead, alive = Maker(_MAKER), Maker(_MAKER)
    makers += [dead, alive]
    dead.kill()
    assert Path(dead.made["dir"]).is_dir()  # SIGKILL ran no cleanup
    done = leftovers.reap({leftovers.DIR: leftovers.remove_dir})
    assert done.removed == [f"dir {dead.made['dir']} (pid {dead.process.pid})"] and done.failed == []
    assert done.live == [f"dir {alive.made['dir']} (pid {alive.process.pid}, running)"]
    assert not Path(dead.made["dir"]).exists() and Path(alive.made["dir"]).is_dir()
    assert [r.owner.pid for r in leftovers.records()] == [alive.process.pid]  # the dead one's file is gone
    alive.kill()
    assert leftovers.reap({leftovers.DIR: leftovers.remove_dir}).removed == [
        f"dir {alive.made['dir']} (pid {alive.process.pid})"
    ]
    assert leftovers.records() == []


def test_a_recycled_pid_is_not_the_owner(state: Path, tmp_path: Path) -> None:
    """The record names this very process's pid, but another start time: a different (dead) process."""
    victim = Path(os.environ["TMPDIR"]) / "harness-test-recycled"
    victim.mkdir()
    state.mkdir(mode=0o700)
    me = leftovers.Owner.current()
    stale = {"pid": me.pid, "create_time": me.create_time - 1000, "argv": [], "resources": [{"kind": "dir",
             "name": str(victim)}]}  # fmt: skip
    (state / f"{me.pid}-{me.create_time - 1000:.2f}.json").write_text(json.dumps(stale))
    assert leftovers.reap({leftovers.DIR: leftovers.remove_dir}).removed == [f"dir {victim} (pid {me.pid})"]
    assert not victim.exists()


def test_own_resources_are_forgotten_once_removed(state: Path) -> None:
    path = leftovers.temporary_directory("harness-test-")
    (record,) = leftovers.records()
    assert (record.owner, record.resources) == (leftovers.Owner.current(), [("dir", str(path))])
    assert leftovers.reap({leftovers.DIR: leftovers.remove_dir}).live  # this process runs: kept
    leftovers.remove_temporary_directory(path)
    assert not path.exists() and leftovers.records() == [] and list(state.iterdir()) == []


def test_only_harness_directories_are_removed_and_failures_stay_recorded(state: Path) -> None:
    state.mkdir(mode=0o700)
    precious = Path(os.environ["TMPDIR"]) / "precious"
    precious.mkdir()
    forged = {"pid": 1, "create_time": 0.0, "argv": [], "resources": [{"kind": "dir", "name": str(precious)},
              {"kind": "netns", "name": "harness-abcdef"}]}  # fmt: skip
    (state / "1-0.00.json").write_text(json.dumps(forged))
    done = leftovers.reap({leftovers.DIR: leftovers.remove_dir})
    assert done.removed == [] and precious.is_dir()
    assert done.failed == [
        "netns harness-abcdef: nothing here removes a 'netns'",
        f"dir {precious}: {precious}: not a harness temporary directory; left alone",
    ]
    assert len(leftovers.records()[0].resources) == 2  # kept for a later reap that can remove them


def test_a_state_directory_others_can_write_is_refused(state: Path) -> None:
    state.mkdir(mode=0o700)
    state.chmod(0o777)
    with pytest.raises(leftovers.UnsafeStateDir, match=r"must be a directory of uid \d+ that no one else can write"):
        leftovers.records()
    leftovers.record("dir", "/tmp/harness-x")  # logged, not written
    assert list(state.iterdir()) == []


def test_a_killed_runs_reference_stack_directory_goes_once_its_postgres_stopped(
    state: Path, makers: list[Maker]
) -> None:
    """The reference stack's data directory (PostgreSQL inside) of a process killed with SIGKILL: its children get
    SIGTERM (they die with their parent) and PostgreSQL stops; until then the directory is kept, then removed."""
    run = Maker(_STACK)
    makers.append(run)
    run.kill()
    stack_dir = Path(run.made["dir"])
    assert stack_dir.is_dir()
    deadline = time.monotonic() + 60
    while True:
        done = leftovers.reap({leftovers.DIR: leftovers.remove_dir})
        if done.removed or time.monotonic() > deadline:
            break
        assert all("PostgreSQL (pid" in f for f in done.failed), done.failed  # only ever "not yet"
        time.sleep(0.2)
    assert done.removed == [f"dir {stack_dir} (pid {run.process.pid})"]
    assert not stack_dir.exists() and leftovers.records() == []
