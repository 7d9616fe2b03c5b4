"""`harness deploy gate`: apply a release, wait for it, gate it with profiles, roll it back when it is red.

    apply ──► wait ──► gate profile(s) ──► green: exit 0
                              │
                              └─ red/invalid ──► rollback ──► wait ──► smoke again ──► exit 1 (2 if that is not green)

The sequence, each step's command, duration, exit code and verdict go to deploy-gate.json and deploy-gate.md in
the gate's own reports folder; every run keeps its own reports beside them. A failing --apply stops at once (exit
2: nothing was deployed, so nothing is rolled back); a failing --wait is a red release (it never became ready) and
is rolled back. Commands run through `sh -c` in their own process group with no stdin and --step-timeout, their
output streamed as `[step] line`; command lines and output are redacted (harness.dr.alerts.redact: tokens, keys,
passwords, URL credentials, and the target's own secrets) before they are shown or written.

SIGINT (Ctrl-C) or SIGTERM (a cancelled CI job) ends the gate without rolling back, exit 128 + the signal: a
command gets SIGTERM (its whole group; SIGKILL after STOP_GRACE_S), a profile run stops as a run does (partial
report); an interrupted gate proves nothing, so whether to roll back is the operator's decision, and the report
says which step was cut short.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

from harness.dr.alerts import redact
from harness.errors import HarnessError
from harness.model.run_ids import safe_part
from harness.procs.child import die_with_parent
from harness.run.collect import RunOutcome

STOP_GRACE_S = 5.0
"""After SIGTERM to an interrupted or timed-out command's group, how long before SIGKILL."""
DRAIN_S = 2.0
"""After a command's shell exits, how long its output is still read: a background process it started may hold the
pipe open for ever, and must not hold the gate."""
LINE_MAX = 16 * 1024
"""A longer line without a newline is shown in pieces (bounded memory)."""
GATE_ID_MAX = 60
"""--gate-id at most this long: each run's id adds -<n>-<profile> and must stay a valid run id (100)."""


@dataclass
class Step:
    name: str
    """apply, wait, gate:<profile>, rollback, wait-after-rollback, smoke-after-rollback:<profile>."""
    command: str
    """As shown and recorded: redacted."""
    started_unix_s: float
    duration_s: float
    exit_code: int
    detail: str = ""
    report: str = ""


@dataclass
class GatePlan:
    apply: str
    profiles: list[str]
    wait: str | None = None
    rollback: str | None = None
    after_rollback: str = "smoke"
    step_timeout_s: float = 900.0
    secrets: tuple[str, ...] = ()
    """Values never shown (the target's keys, the Slack webhook), on top of redact()'s patterns."""


@dataclass
class GateRecord:
    gate_id: str
    steps: list[Step] = field(default_factory=list)
    outcome: str = ""
    exit_code: int = 2


class GateInterrupted(Exception):
    """SIGINT/SIGTERM during the gate; `step` is the step it cut short, when not yet recorded."""

    def __init__(self, signum: int, step: Step | None = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.step = step

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


RunProfile = Callable[[str, str], RunOutcome]
"""(profile, run id) → the run's outcome (the orchestrator, with the gate's target options)."""


@contextlib.contextmanager
def interruptible() -> Iterator[Callable[[], None]]:
    """SIGINT and SIGTERM raise GateInterrupted, once. The callable it yields quiets them: call it once the sequence
    is over, so a signal while the report is written or the alert sent is ignored instead of cutting that short. A
    profile run installs its own handlers meanwhile (it stops gracefully, and its outcome carries the signal)."""
    fired: list[int] = []

    def quiet() -> None:
        fired.append(0)

    if threading.current_thread() is not threading.main_thread():
        yield quiet
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        if fired:
            return
        fired.append(signum)
        raise GateInterrupted(signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield quiet
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


class _Output:
    """A command's output bytes → `[name] line` on the log, each line redacted."""

    def __init__(self, name: str, log: TextIO, secrets: Sequence[str]) -> None:
        self.name, self.log, self.secrets = name, log, secrets
        self.pending = b""
        self.eof = False

    def feed(self, data: bytes) -> None:
        if not data:
            self.eof = True
            return
        self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        while len(self.pending) > LINE_MAX:
            lines.append(self.pending[:LINE_MAX])
            self.pending = self.pending[LINE_MAX:]
        for line in lines:
            self._show(line)

    def flush(self) -> None:
        if self.pending:
            self._show(self.pending)
            self.pending = b""

    def _show(self, line: bytes) -> None:
        text = redact(line.decode("utf-8", "replace").rstrip("\r"), self.secrets)
        print(f"[{self.name}] {text}", file=self.log, flush=True)


def run_command(name: str, command: str, timeout_s: float, log: TextIO, secrets: Sequence[str] = ()) -> Step:
    """`sh -c COMMAND` in its own process group, output streamed as `[name] line`; the group is stopped after
    `timeout_s`, or when the gate is interrupted (GateInterrupted, with this step, goes on up)."""
    shown = redact(command, secrets)
    print(f"harness: deploy gate: {name}: {shown}", file=log, flush=True)
    started, clock = time.time(), time.monotonic()
    proc = subprocess.Popen(
        ["sh", "-c", command],
        stdin=subprocess.DEVNULL,  # a command that prompts fails instead of hanging the pipeline
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches the harness alone, which stops the group itself
        preexec_fn=die_with_parent if sys.platform == "linux" else None,
    )
    assert proc.stdout is not None
    out = _Output(name, log, secrets)
    try:
        timed_out, left_running = _follow(proc, out, clock + timeout_s)
    except (GateInterrupted, KeyboardInterrupt) as exc:
        _stop_group(proc)
        interrupted = exc if isinstance(exc, GateInterrupted) else GateInterrupted(signal.SIGINT)
        interrupted.step = Step(
            name, shown, started, round(time.monotonic() - clock, 3), 128 + interrupted.signum,
            f"interrupted by {interrupted.name}; its processes were stopped",
        )  # fmt: skip
        raise interrupted from None
    finally:
        out.flush()
        proc.stdout.close()
    code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    if timed_out:
        detail = f"timed out after {timeout_s:g} s; its processes were stopped"
        code = code or 124  # as timeout(1): a timeout is never a success
    else:
        detail = "ok" if code == 0 else f"exit {code}"
    if left_running:
        print(f"harness: deploy gate: {name}: a background process still holds its output; not waited for", file=log)
    return Step(name, shown, started, round(time.monotonic() - clock, 3), code, detail)


def _follow(proc: subprocess.Popen[bytes], out: _Output, deadline: float) -> tuple[bool, bool]:
    """Stream the output until the shell has exited and its output ended (or DRAIN_S passed); stop the group at
    `deadline`. Returns (timed out, output still held open by a background process)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    exited_at: float | None = None
    timed_out = False
    while True:
        now = time.monotonic()
        if exited_at is None and proc.poll() is not None:
            exited_at = now
        if exited_at is not None and (out.eof or now - exited_at >= DRAIN_S):
            return timed_out, not out.eof
        if exited_at is None and now >= deadline:
            timed_out = True
            _stop_group(proc)
            continue
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            out.feed(os.read(fd, 65536))


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the command's process group, SIGKILL to what is left after STOP_GRACE_S."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(STOP_GRACE_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_gate(plan: GatePlan, record: GateRecord, run_profile: RunProfile, log: TextIO) -> GateRecord:
    """The whole sequence; `record` fills as it goes (the CLI writes it on every path). An interruption ends it
    with exit 128 + the signal and no rollback."""
    try:
        return _sequence(plan, record, run_profile, log)
    except (GateInterrupted, KeyboardInterrupt) as exc:
        interrupted = exc if isinstance(exc, GateInterrupted) else GateInterrupted(signal.SIGINT)
        if interrupted.step is not None:
            record.steps.append(interrupted.step)
        during = record.steps[-1].name if record.steps else "the start"
        return _end(
            record,
            f"interrupted by {interrupted.name} during {during}: not rolled back; the deployment is as that step "
            "left it (roll back by hand if needed)",
            128 + interrupted.signum,
        )


def _sequence(plan: GatePlan, record: GateRecord, run_profile: RunProfile, log: TextIO) -> GateRecord:
    apply = _command(plan, record, "apply", plan.apply, log)
    if apply.exit_code != 0:
        return _end(record, "apply failed: nothing deployed, nothing rolled back", 2)
    red = _wait_failed(plan, record, "wait", log) or not _gates_pass(plan, record, run_profile, log)
    if not red:
        return _end(record, "green: the release passed every gate", 0)
    if plan.rollback is None:
        return _end(record, "red: no --rollback given; the release stays deployed", 1)
    rollback = _command(plan, record, "rollback", plan.rollback, log)
    if rollback.exit_code != 0:
        return _end(record, "red, and the rollback failed: act now", 2)
    if _wait_failed(plan, record, "wait-after-rollback", log):
        return _end(record, "red, rolled back, but the previous release did not become ready: act now", 2)
    step = _gate_run(f"smoke-after-rollback:{plan.after_rollback}", plan.after_rollback, record, run_profile, log)
    if step.exit_code != 0:
        return _end(record, "red, rolled back, but the previous release fails its smoke run: act now", 2)
    return _end(record, "red: caught and rolled back; the previous release passes its smoke run", 1)


def _command(plan: GatePlan, record: GateRecord, name: str, command: str, log: TextIO) -> Step:
    step = run_command(name, command, plan.step_timeout_s, log, plan.secrets)
    record.steps.append(step)
    return step


def _wait_failed(plan: GatePlan, record: GateRecord, name: str, log: TextIO) -> bool:
    return plan.wait is not None and _command(plan, record, name, plan.wait, log).exit_code != 0


def _gates_pass(plan: GatePlan, record: GateRecord, run_profile: RunProfile, log: TextIO) -> bool:
    for profile in plan.profiles:
        if _gate_run(f"gate:{profile}", profile, record, run_profile, log).exit_code != 0:
            return False  # the first red profile decides; later ones would load a broken release for nothing
    return True


def run_id_of(gate_id: str, number: int, profile: str) -> str:
    """The id of the gate's `number`th step's run: always a valid run id for a --gate-id within GATE_ID_MAX."""
    return f"{gate_id}-{number}-{safe_part(Path(profile).stem, 30)}"


def _gate_run(name: str, profile: str, record: GateRecord, run_profile: RunProfile, log: TextIO) -> Step:
    print(f"harness: deploy gate: {name}", file=log, flush=True)
    started, clock = time.time(), time.monotonic()
    command = f"harness run {profile}"
    signum: int | None = None
    try:
        outcome = run_profile(profile, run_id_of(record.gate_id, len(record.steps) + 1, profile))
    except HarnessError as err:  # the target did not answer: not a green release
        code, detail, report = 2, f"invalid: {err}"[:400], ""
    except (GateInterrupted, KeyboardInterrupt) as exc:  # between the run's own signal handling and its end
        interrupted = exc if isinstance(exc, GateInterrupted) else GateInterrupted(signal.SIGINT)
        interrupted.step = Step(
            name, command, started, round(time.monotonic() - clock, 3), 128 + interrupted.signum,
            f"interrupted by {interrupted.name}",
        )  # fmt: skip
        raise interrupted from None
    else:
        code, report = outcome.exit_code, str(outcome.out_dir)
        signum = outcome.signal_exit - 128 if outcome.signal_exit is not None else None
        reasons = "; ".join(outcome.verdict.reasons)[:300]
        detail = f"{outcome.verdict.status}: {reasons}" if reasons else str(outcome.verdict.status)
    step = Step(name, command, started, round(time.monotonic() - clock, 3), code, detail, report)
    record.steps.append(step)
    if signum is not None:
        # The run stopped on a signal (its own handler took it): its partial verdict is "invalid", which must not
        # read as a red release and trigger a rollback nobody asked for.
        step.detail = f"interrupted by {signal.Signals(signum).name}: partial run ({detail})"
        raise GateInterrupted(signum)
    return step


def _end(record: GateRecord, outcome: str, code: int) -> GateRecord:
    record.outcome, record.exit_code = outcome, code
    return record


def write_record(record: GateRecord, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"gate_id": record.gate_id, "outcome": record.outcome, "exit_code": record.exit_code,
            "steps": [asdict(s) for s in record.steps]}  # fmt: skip
    json_path = out_dir / "deploy-gate.json"
    json_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"## harness deploy gate {record.gate_id}: {record.outcome} (exit {record.exit_code})",
        "",
        "| # | step | command | duration | exit | result | report |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, s in enumerate(record.steps, start=1):
        command = s.command.replace("|", "\\|")[:200]
        detail = s.detail.replace("|", "\\|")
        lines.append(f"| {i} | {s.name} | `{command}` | {s.duration_s:.1f} s | {s.exit_code} | {detail} | {s.report} |")
    md_path = out_dir / "deploy-gate.md"
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return json_path, md_path
