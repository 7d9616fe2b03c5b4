"""One PostgreSQL cluster (a data directory and the server running on it), driven with the real programs.

    Cluster(dir, port).init()            initdb (copied from a cached template: about 0.1 s instead of 1 s)
    Cluster(dir, port).base_backup(...)  pg_basebackup -R from a primary: a streaming replica
    .start() / .stop() / .kill()         the server is our child; it dies with us (SIGTERM: a fast shutdown)
    .rewind(source)                      pg_rewind an old primary so it can follow the new one (failback)

Settings every cluster gets (postgresql.conf): loopback TCP only, no unix socket, `wal_level = logical` (Realtime
decodes the WAL), room for WAL senders and slots, hot standby with feedback, UTC and ISO dates (the wire format
of PostgREST's JSON), and `trust` authentication for loopback: the server listens on 127.0.0.1 only and holds test
data, so there is no password to leak (docs/reference-stack.md says so; a real deployment uses its own server).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.errors import ConfigError, TargetUnreachable
from harness.procs.child import die_with_parent
from harness.refstack.postgres import binaries
from harness.refstack.postgres.account import Account, give_directory, runnable_bin_dir, server_account

log = logging.getLogger(__name__)

SUPERUSER = "supabase_admin"
"""The bootstrap superuser, as on a Supabase project."""
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
TEMPLATE_VARIABLE = "HARNESS_PG_TEMPLATE_DIR"

SETTINGS: Mapping[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "wal_level": "logical",
    "max_wal_senders": "16",
    "max_replication_slots": "16",
    "wal_keep_size": "'256MB'",
    "hot_standby": "on",
    "hot_standby_feedback": "on",
    "max_connections": "200",
    "shared_buffers": "'128MB'",
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "datestyle": "'ISO, YMD'",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
    # Checkpoints far apart: the stand-in keeps Storage's object bodies in PostgreSQL (Supabase keeps them in S3),
    # so `harness load` wrote 15-19 MB of WAL a second, and the default 1 GB asked for a checkpoint about every
    # 27 s, each followed by a wave of full-page images: 1.6 of 3.7 GB of WAL (pg_stat_checkpointer, pg_stat_wal,
    # docs/BENCHMARKS.md). The price: a crash replays more WAL, and pg_wal holds up to this much.
    "max_wal_size": "'8GB'",
    "checkpoint_timeout": "'30min'",
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class Cluster:
    def __init__(self, data_dir: Path, port: int = 0, host: str = "127.0.0.1") -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port or free_port(host)
        self.account: Account = server_account()
        self.bin = runnable_bin_dir(binaries.bin_dir(), self.account)
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    # -- paths and programs -----------------------------------------------------------------------------------------
    def dsn(self, user: str = SUPERUSER, database: str = "postgres") -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/{database}"

    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    @property
    def is_standby(self) -> bool:
        return (self.data_dir / "standby.signal").is_file()

    def _run(self, program: str, args: Sequence[str], what: str) -> str:
        argv = [str(self.bin / program), *args]
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            user=None if self.account.is_self else self.account.uid,
            group=None if self.account.is_self else self.account.gid,
            env={**os.environ, "LC_ALL": "C.UTF-8", "PGTZ": "UTC"},
            cwd="/",
            timeout=600,
        )
        if result.returncode != 0:
            raise TargetUnreachable(f"{what} failed ({program} exit {result.returncode}): {result.stderr.strip()}")
        return result.stdout

    # -- creation ---------------------------------------------------------------------------------------------------
    def init(self) -> None:
        """A fresh cluster (from the cached template), or nothing when the directory already holds one."""
        if self.initialised:
            return
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise ConfigError(
                f"{self.data_dir} is not empty and holds no PostgreSQL cluster (no PG_VERSION); "
                "empty it or choose another --data-dir"
            )
        template = self._template()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if self.data_dir.exists():
            self.data_dir.rmdir()
        shutil.copytree(template, self.data_dir, symlinks=True)
        give_directory(self.data_dir, self.account)
        self._write_settings({})

    def _template(self) -> Path:
        """An initdb'ed directory, made once per PostgreSQL install and account and copied for every cluster."""
        key = hashlib.sha256(f"{self.bin.resolve()}:{self.account.uid}".encode()).hexdigest()[:12]
        root = Path(os.environ.get(TEMPLATE_VARIABLE) or Path(tempfile.gettempdir()) / f"harness-pg-template-{key}")
        template = root / "data"
        if (template / "PG_VERSION").is_file():
            return template
        root.mkdir(parents=True, exist_ok=True)
        give_directory(root, self.account)
        root.chmod(0o755)
        staging = root / f"staging-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        self._run(
            "initdb",
            ["-D", str(staging), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
            "initdb",
        )
        try:
            staging.rename(template)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # a concurrent start made it first
        return template

    def _write_settings(self, extra: Mapping[str, str]) -> None:
        conf = self.data_dir / "postgresql.conf"
        marker = "# -- harness reference stack --"
        text = conf.read_text().split(marker)[0]
        lines = [f"{name} = {value}" for name, value in {**SETTINGS, **extra}.items()]
        conf.write_text(text + marker + "\n" + "\n".join(lines) + "\n")

    def configure(self, settings: Mapping[str, str]) -> None:
        """Extra postgresql.conf settings (values as SQL literals), applied at the next start."""
        self._write_settings(settings)

    def base_backup(self, source_host: str, source_port: int, slot: str) -> None:
        """A streaming replica of the server at source: `pg_basebackup -R` using (and creating) a physical slot."""
        if self.initialised:
            return
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        give_directory(self.data_dir, self.account)
        args = ["-D", str(self.data_dir), "-h", source_host, "-p", str(source_port), "-U", SUPERUSER]
        args += ["-R", "-X", "stream", "-c", "fast", "--no-sync", "-S", slot]
        try:
            self._run("pg_basebackup", [*args, "-C"], "pg_basebackup (a replica's first copy)")
        except TargetUnreachable as exc:
            if "already exists" not in str(exc):
                raise
            shutil.rmtree(self.data_dir, ignore_errors=True)
            give_directory(self.data_dir, self.account)
            self._run("pg_basebackup", args, "pg_basebackup (a replica's first copy)")

    def follow(self, source_host: str, source_port: int, slot: str) -> None:
        """Turn this (stopped) cluster into a standby of source: primary_conninfo, slot, standby.signal."""
        conninfo = f"host={source_host} port={source_port} user={SUPERUSER} application_name={slot}"
        auto = self.data_dir / "postgresql.auto.conf"
        kept = [
            line
            for line in (auto.read_text().splitlines() if auto.exists() else [])
            if not line.startswith(("primary_conninfo", "primary_slot_name"))
        ]
        kept += [f"primary_conninfo = '{conninfo}'", f"primary_slot_name = '{slot}'"]
        auto.write_text("\n".join(kept) + "\n")
        (self.data_dir / "standby.signal").write_text("")
        if not self.account.is_self:
            for path in (auto, self.data_dir / "standby.signal"):
                os.chown(path, self.account.uid, self.account.gid)

    def rewind(self, source_host: str, source_port: int) -> None:
        """pg_rewind this (stopped) old primary onto the new primary's timeline."""
        source = f"host={source_host} port={source_port} user={SUPERUSER} dbname=postgres"
        self._run("pg_rewind", ["-D", str(self.data_dir), f"--source-server={source}"], "pg_rewind")

    # -- running ----------------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        _clear_stale_pid(self.data_dir)
        account = self.account
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        try:
            self._proc = subprocess.Popen(
                [str(self.bin / "postgres"), "-D", str(self.data_dir), "-p", str(self.port), "-h", self.host],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                user=None if account.is_self else account.uid,
                group=None if account.is_self else account.gid,
                extra_groups=None if account.is_self else [],
                env={**os.environ, "LC_ALL": "C.UTF-8"},
                cwd="/",
                start_new_session=True,
                preexec_fn=die_with_parent if sys.platform == "linux" else None,
            )
        finally:
            log_file.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        pid_file = self.data_dir / "postmaster.pid"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise TargetUnreachable(
                    f"PostgreSQL on {self.data_dir} exited with {self._proc.returncode} while starting: "
                    f"{_tail(self.log_path)}"
                )
            with contextlib.suppress(OSError):
                lines = pid_file.read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() in ("ready", "standby"):
                    return
            time.sleep(0.02)
        self.kill()
        raise TargetUnreachable(
            f"PostgreSQL on {self.data_dir} did not accept connections in {START_TIMEOUT_S:.0f} s: "
            f"{_tail(self.log_path)}"
        )

    def stop(self) -> None:
        """A fast shutdown (SIGINT: roll back open transactions, checkpoint), then kill if it hangs."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the postmaster: a crash, as a drill wants it (its backends exit on their own)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.kill()
        proc.wait(10)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None


def _clear_stale_pid(data_dir: Path) -> None:
    """After a kill -9 the postmaster.pid stays; Postgres checks it itself, but a reused pid would block start-up."""
    pid_file = data_dir / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(pid_file.read_text().splitlines()[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            pid_file.unlink()
            return
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"postgres" not in cmdline:
            pid_file.unlink()


def _tail(path: Path, lines: int = 8) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    return "(no log)"
