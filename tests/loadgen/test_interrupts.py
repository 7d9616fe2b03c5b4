"""Ctrl-C at any moment of a run: one summary line and exit 130, never a traceback; a partial report (summary.md,
junit.xml, result.json) once the run has its report folder; no child process left behind.

The harness runs as a real subprocess (the signal goes to the real entry point); its output is read line by line,
and each signal is sent when the line that says where the run is has been printed.
"""

from __future__ import annotations

import _thread
import io
import json
import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import psutil
import pytest
from loadgen_helpers import REST_READ, harness_argv, write_profile

from harness.model.result import load_result
from harness.procs import interrupts
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts
from harness.run.signals import StopRequest

WAIT_S = 90.0
"""Longest wait for any line (the stack's start-up on a busy machine)."""
LAST_LINE = re.compile(r"^harness: (stopped|aborted) by SIGINT: the run is partial; report in (.+)/ \(exit 130\)$")


class HarnessProcess:
    """`python -m harness …` with its stderr lines collected on a thread (stdout drained too)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(harness_argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self.stdout: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr, True), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout, False), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self.children: dict[int, psutil.Process] = {}

    def _pump(self, stream: IO[str], into: list[str], announce: bool) -> None:
        for line in stream:
            into.append(line)
            if announce:
                self.lines.put(line)

    def wait_for(self, pattern: str) -> str:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.proc.poll() is None, f"exited {self.proc.returncode} before {pattern!r}:\n{self.err}"
                continue
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r} within {WAIT_S:.0f} s:\n{self.err}")

    def interrupt(self) -> None:
        """SIGINT, as a terminal's Ctrl-C delivers it to the harness (its children run in sessions of their own)."""
        self.children.update({c.pid: c for c in psutil.Process(self.proc.pid).children(recursive=True)})
        self.proc.send_signal(signal.SIGINT)

    def finish(self) -> int:
        try:
            code = self.proc.wait(WAIT_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        for thread in self._threads:
            thread.join(10)
        return code

    @property
    def err(self) -> str:
        return "".join(self.stderr)

    def alive_children(self) -> list[psutil.Process]:
        """The children seen at the signals that still run, after a bounded wait for them to go."""
        deadline = time.monotonic() + 15
        alive = list(self.children.values())
        while alive and time.monotonic() < deadline:
            alive = [c for c in alive if _alive(c)]
            time.sleep(0.2)
        return alive


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _assert_partial_report(out: Path) -> None:
    assert (out / "summary.md").is_file() and (out / "junit.xml").is_file()
    assert load_result(out / "result.json").run.partial is True
    assert "partial" in (out / "junit.xml").read_text()


def _imports_started(pid: int) -> bool:
    """The interpreter runs the harness's imports (its SIGINT handler is installed long before that)."""
    try:
        return "pydantic_core" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def test_ctrl_c_while_the_harness_imports_exits_130_with_one_line(tmp_path: Path) -> None:
    run = HarnessProcess("smoke", "--duration", "5s", "--reports-dir", str(tmp_path))
    deadline = time.monotonic() + WAIT_S
    while not _imports_started(run.proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    run.interrupt()
    assert run.finish() == 130, run.err
    assert "Traceback" not in run.err
    last = run.stderr[-1].rstrip("\n")
    # Wherever the signal landed (imports, or already the stack's start), the last line says so.
    assert last == "harness: interrupted (SIGINT)" or LAST_LINE.match(last), run.err


def test_ctrl_c_while_the_reference_stack_starts_stops_the_run_and_reports_it(tmp_path: Path) -> None:
    run = HarnessProcess("smoke", "--duration", "5s", "--reports-dir", str(tmp_path), "--run-id", "startup")
    run.wait_for("starting the reference stack")
    run.interrupt()
    assert run.finish() == 130, run.err
    assert "Traceback" not in run.err
    match = LAST_LINE.match(run.stderr[-1].rstrip("\n"))
    assert match is not None and match[1] == "stopped", run.err
    assert "check PASS" not in run.err  # the smoke checklist is skipped once stopped: it is part of start-up
    _assert_partial_report(tmp_path / "startup")
    assert not run.alive_children()


def test_a_second_ctrl_c_while_the_stack_starts_aborts_and_still_reports(tmp_path: Path) -> None:
    run = HarnessProcess("smoke", "--duration", "5s", "--reports-dir", str(tmp_path), "--run-id", "abort")
    run.wait_for("starting the reference stack")
    run.interrupt()
    run.wait_for("SIGINT: stopping")
    run.interrupt()
    assert run.finish() == 130, run.err
    assert "Traceback" not in run.err
    match = LAST_LINE.match(run.stderr[-1].rstrip("\n"))
    assert match is not None and match[1] == "aborted", run.err
    _assert_partial_report(tmp_path / "abort")
    assert not run.alive_children()


@pytest.mark.slow
def test_a_second_ctrl_c_during_the_load_aborts_and_still_reports(tmp_path: Path, stack_env_file: Path) -> None:
    profile = write_profile(tmp_path / "long.toml", duration_s=120, users=2, extra="[gates]\nmin_rps = false\n")
    run = HarnessProcess(
        "run", str(profile), "--env-file", str(stack_env_file), "--workers", "1", "--locustfile", str(REST_READ),
        "--reports-dir", str(tmp_path), "--run-id", "twice",
    )  # fmt: skip
    run.wait_for(r"long  \d+s/120s  users [1-9]")  # a progress line: the load runs
    run.interrupt()
    run.wait_for("SIGINT: stopping")  # the graceful stop has begun: Locust is told to stop
    run.interrupt()
    assert run.finish() == 130, run.err
    assert "Traceback" not in run.err
    match = LAST_LINE.match(run.stderr[-1].rstrip("\n"))
    assert match is not None and match[1] == "aborted", run.err
    _assert_partial_report(tmp_path / "twice")
    assert len(run.children) >= 2 and not run.alive_children()  # Locust's master and worker are gone


def test_keyboard_interrupt_while_a_piece_starts_leaves_no_process(tmp_path: Path) -> None:
    """A second Ctrl-C while a server piece starts: the piece was not handed to the stack yet, so it must stop
    itself (it used to keep running until the harness exited)."""
    me = psutil.Process()

    def pieces() -> dict[int, psutil.Process]:
        found = {}
        for child in me.children(recursive=True):
            try:
                if _alive(child) and "harness.procs.launch" in " ".join(child.cmdline()):
                    found[child.pid] = child
            except psutil.NoSuchProcess:
                continue
        return found

    before = pieces()  # another test's stack (a module fixture) may be running

    def launching() -> list[psutil.Process]:
        return [p for pid, p in pieces().items() if pid not in before]

    seen: list[psutil.Process] = []

    def interrupt_when_launched() -> None:
        deadline = time.monotonic() + WAIT_S
        while not seen and time.monotonic() < deadline:
            seen.extend(launching())
            time.sleep(0.02)
        _thread.interrupt_main()  # KeyboardInterrupt in the main thread, as a second Ctrl-C raises it

    stack = ReferenceStack(StackConfig(ports=StackPorts.any(), pieces=("primary",), log_dir=tmp_path))
    timer = threading.Thread(target=interrupt_when_launched, daemon=True)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            stack.start()
            time.sleep(WAIT_S)  # never reached unless the piece came up before the interrupt
        timer.join(10)
        assert seen, "no piece was launched"
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in seen) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p.pid for p in seen if _alive(p)]
        assert json.dumps(stack.endpoints.ports) == "{}"  # the stack never counted it as started
    finally:
        for p in seen:
            if _alive(p):
                p.kill()
        stack.stop()


def test_a_second_signal_while_a_child_starts_is_raised_once_the_child_is_held() -> None:
    """Raised inside `subprocess.Popen` (or a fork callback, where Python drops it), the abort would leave a child
    nobody stops, or be lost; it is held to the end of the section instead."""
    with StopRequest(io.StringIO()) as stop:
        signal.raise_signal(signal.SIGINT)  # the first: stop gracefully
        assert stop.requested and not stop.aborted
        finished = False
        with pytest.raises(KeyboardInterrupt), interrupts.holding():
            signal.raise_signal(signal.SIGINT)  # the second, inside the section
            finished = True
        assert finished and stop.aborted
        assert stop.exit_code == 130
