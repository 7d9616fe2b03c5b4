"""`harness worker --master-host HOST`: Locust workers for a distributed run, configured by the master.

Each worker process first asks the master's bootstrap (harness/run/bootstrap.py) for its slot, then starts
`locust --worker` with what it was given: the environment, the group's profile, the test users' credentials and the
locustfile's folder, written to a private temporary folder (0700) that is removed on exit. The worker needs no
other configuration, so the same command serves docker-compose's `--scale worker=N` and a Kubernetes Job.

Exit codes: 0 when every worker ended normally (the master ended the run), 1 when one failed, 2 when the master
could not be reached within --connect-timeout or refused the worker (every slot taken, wrong token), 130/143 when
stopped by Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

import httpx

from harness.errors import ConfigError, TargetUnreachable
from harness.loadgen import env as hs
from harness.loadgen.cluster import worker_argv
from harness.procs.child import Child, describe_exit
from harness.run.bootstrap import PATH, TOKEN_VAR, bootstrap_port

RETRY_S = 1.0
STOP_GRACE_S = 10.0


def fetch_config(master_host: str, master_port: int, name: str, timeout_s: float) -> dict[str, Any]:
    """The worker's configuration, retried until the master's bootstrap answers or `timeout_s` has passed."""
    url = f"http://{master_host}:{bootstrap_port(master_port)}{PATH}"
    token = os.environ.get(TOKEN_VAR)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while True:
        try:
            reply = httpx.post(url, json={"name": name}, headers=headers, timeout=10)
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        else:
            if reply.status_code == 200:
                return dict(reply.json())
            detail = _error_of(reply)
            if reply.status_code in (401, 409):
                raise ConfigError(f"the master at {master_host}:{master_port} refused this worker: {detail}")
            last = f"HTTP {reply.status_code}: {detail}"
        if time.monotonic() >= deadline:
            raise TargetUnreachable(
                f"no master at {master_host}:{master_port} within {timeout_s:g} s ({last}); start the master "
                "(`harness run … --master`) first or raise --connect-timeout"
            )
        time.sleep(RETRY_S)


def _error_of(reply: httpx.Response) -> str:
    try:
        return str(reply.json().get("error", reply.text[:200]))
    except ValueError:
        return reply.text[:200]


def prepare(answer: dict[str, Any], folder: Path) -> dict[str, str]:
    """Write the answer's files into `folder`; the worker's environment."""
    for name, text in answer["locustfiles"].items():
        (folder / Path(name).name).write_text(text, encoding="utf-8")
    env = {**os.environ, **answer["env"], hs.OUT_DIR: str(folder), hs.WORKER_NAME: answer["worker_name"]}
    for var, file in answer["files"].items():
        path = folder / Path(file["name"]).name
        path.write_text(file["text"], encoding="utf-8")
        path.chmod(0o600)
        env[var] = str(path)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_workers(master_host: str, master_port: int, processes: int, connect_timeout_s: float, log: TextIO) -> int:
    stop = _StopOnSignal()
    with tempfile.TemporaryDirectory(prefix="harness-worker-") as tmp:
        os.chmod(tmp, 0o700)
        children: list[Child] = []
        try:
            for i in range(1, processes + 1):
                name = f"{socket.gethostname()}-{os.getpid()}-{i}"  # unique per process, also on one machine
                answer = fetch_config(master_host, master_port, name, connect_timeout_s)
                folder = Path(tmp) / f"worker-{i}"
                folder.mkdir()
                env = prepare(answer, folder)
                argv = worker_argv(folder / answer["locustfile"], answer["host"], master_host, answer["master_port"])
                group = f" (group {answer['group']})" if answer["group"] else ""
                print(f"harness: worker {answer['worker_name']}{group} joining {master_host}", file=log, flush=True)
                children.append(Child(answer["worker_name"], argv, folder / "locust-worker.log", env=env))
            while any(child.running() for child in children) and not stop.signal_name:
                time.sleep(0.5)
        finally:
            for child in children:
                child.stop(STOP_GRACE_S)
        failed = [c for c in children if c.exit_code not in (0, None)]
        for child in failed:
            tail = "\n".join(child.log_tail().splitlines()[-20:])
            print(f"harness: worker {child.name} {describe_exit(child.exit_code or 0)}:\n{tail}", file=log)
        for child in children:
            child.close()
    if stop.signal_name:
        print(f"harness: workers stopped by {stop.signal_name}", file=log)
        return 128 + stop.signum
    print(f"harness: {len(children) - len(failed)} of {len(children)} worker(s) ended normally", file=log)
    return 1 if failed else 0


class _StopOnSignal:
    def __init__(self) -> None:
        self.signal_name = ""
        self.signum = 0
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.signum, self.signal_name = signum, signal.Signals(signum).name
