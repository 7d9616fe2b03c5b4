"""`harness target up` watches its pieces: one that dies (here the LiveKit stand-in, SIGKILLed) is reported by name
with how it ended, the rest is stopped, and the command exits 2 instead of staying up silently half-dead."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from harness.procs.child import describe_exit

READY_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 20.0


def _wait_for_line(proc: subprocess.Popen[str], text: str, timeout_s: float) -> str:
    """stdout up to the line holding `text` (bounded in time; a reader thread, as a pipe's buffer hides lines from
    select)."""
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()], daemon=True).start()
    seen = ""
    deadline = time.monotonic() + timeout_s
    while text not in seen and (left_s := deadline - time.monotonic()) > 0:
        try:
            seen += lines.get(timeout=left_s)
        except queue.Empty:
            break
    return seen


def test_a_piece_that_dies_is_named_and_ends_target_up_with_exit_2(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "harness", "target", "up", "--only", "livekit", "--livekit-port", "0",
            "--data-dir", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out = _wait_for_line(proc, "Ctrl-C stops it.", READY_TIMEOUT_S)
        assert "livekit" in out, out
        (piece,) = [c for c in psutil.Process(proc.pid).children() if "harness.procs.launch" in " ".join(c.cmdline())]
        os.kill(piece.pid, signal.SIGKILL)
        code = proc.wait(timeout=EXIT_TIMEOUT_S)
        err = proc.stderr.read() if proc.stderr is not None else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert code == 2, err
    assert "harness: error: piece 'livekit' of the reference stack stopped on its own (killed by SIGKILL (-9))" in err
    assert f"Its log {tmp_path / 'livekit.log'} ends with:" in err


def test_exit_descriptions() -> None:
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(-signal.SIGTERM) == "killed by SIGTERM (-15)"
