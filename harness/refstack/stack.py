"""Start and stop the embedded reference stack: each piece is its own process, on the ports asked (0 = any).

    with ReferenceStack(StackConfig(ports=StackPorts.any())) as stack:
        stack.endpoints.primary_url, stack.endpoints.edge_url, ...

    edge :54320 ──► Singapore primary :54321 ──(change log)──► Japan replica :54322
                └─► Japan replica (CN viewers, or Singapore down)          LiveKit stand-in :7880

Children get SIGTERM when the parent dies (PR_SET_PDEATHSIG), so a killed run never leaves servers behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from harness.errors import TargetUnreachable
from harness.model import keys
from harness.procs.launch import READY_PREFIX

PRIMARY_REGION = "ap-southeast-1"
REPLICA_REGION = "ap-northeast-1"
START_TIMEOUT_S = 30.0
"""How long a piece may take to listen before the stack gives up (imports dominate: ~1-2 s here)."""
STOP_TIMEOUT_S = 10.0


@dataclass
class StackPorts:
    edge: int = 54320
    primary: int = 54321
    replica: int = 54322
    livekit: int = 7880

    @classmethod
    def any(cls) -> StackPorts:
        """Let the OS choose every port (tests, and runs beside another stack)."""
        return cls(0, 0, 0, 0)


PIECES = ("primary", "replica", "livekit", "edge")


@dataclass
class StackConfig:
    host: str = "127.0.0.1"
    ports: StackPorts = field(default_factory=StackPorts)
    data_dir: Path | None = None
    """Where each region keeps its SQLite file and objects; None = a temporary directory removed on stop."""
    pieces: tuple[str, ...] = PIECES
    log_dir: Path | None = None
    """Where each piece's stderr goes (`<piece>.log`); defaults to the data dir."""
    replication_lag_ms: float = 0.0
    """Extra delay before the Japan replica applies each change (makes RPO measurable in failover drills)."""
    replica_forwards_writes: bool = True
    """The Japan replica passes China users' writes to Singapore (region/forwarding.py); False: it refuses them."""
    access_token_ttl_s: int = 3600
    """Lifetime of access tokens the regions mint (short values exercise refresh under load)."""
    health_interval_s: float = 1.0
    """How often the edge probes each origin's /health."""
    livekit_join_timeout_s: float = 60.0
    """The LiveKit stand-in drops a participant that never becomes active after this long (real server: 60 s)."""


@dataclass
class Endpoints:
    host: str
    ports: dict[str, int] = field(default_factory=dict)

    def url(self, piece: str, scheme: str = "http") -> str:
        return f"{scheme}://{self.host}:{self.ports[piece]}"

    @property
    def primary_url(self) -> str:
        return self.url("primary")

    @property
    def replica_url(self) -> str:
        return self.url("replica")

    @property
    def edge_url(self) -> str:
        return self.url("edge")

    @property
    def livekit_url(self) -> str:
        return self.url("livekit", "ws")

    def describe(self) -> dict[str, str]:
        """Endpoint names as the deployment's production.env spells them (DESIGN.md, configuration names)."""
        out: dict[str, str] = {}
        if "edge" in self.ports:
            out["SUPABASE_URL"] = self.edge_url
        if "primary" in self.ports:
            out["SUPABASE_URL_SINGAPORE"] = self.primary_url
            out.setdefault("SUPABASE_URL", self.primary_url)
        if "replica" in self.ports:
            out["SUPABASE_URL_JAPAN"] = self.replica_url
        if "livekit" in self.ports:
            out["LIVEKIT_URL"] = self.livekit_url
            out["LIVEKIT_API_KEY"] = keys.LIVEKIT_API_KEY
        out["SUPABASE_ANON_KEY"] = keys.ANON_KEY
        return out


def die_with_parent() -> None:
    """In a child (preexec_fn): Linux sends it SIGTERM when the parent exits (no-op elsewhere). Every process the
    harness starts uses this, so a killed run never leaves servers or workers behind."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)


class PieceProcess:
    """One running piece: its process, its port, and its log file."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.procs.launch", *argv],
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
            start_new_session=True,  # a terminal's Ctrl-C reaches the parent only, which stops pieces in order
        )
        self.port = self._wait_ready()

    def _wait_ready(self) -> int:
        assert self.proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT_S
        buffer = b""
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.2):
                if self.proc.poll() is not None:
                    break
                continue
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buffer += chunk
            for line in buffer.decode(errors="replace").splitlines():
                if line.startswith(READY_PREFIX):
                    selector.close()
                    return int(json.loads(line[len(READY_PREFIX) :])["port"])
        selector.close()
        self.stop()
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise TargetUnreachable(
            f"reference stack piece {self.name!r} did not start within {START_TIMEOUT_S:.0f} s; "
            f"its log ({self.log_path}) ends with:\n{tail}"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


class ReferenceStack:
    """The whole reference stack (or the pieces asked for), as a context manager."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self.endpoints = Endpoints(self.config.host)
        self.processes: dict[str, PieceProcess] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def _argv(self, piece: str, data_dir: Path) -> list[str]:
        config, ports, endpoints = self.config, self.config.ports, self.endpoints
        common = ["--host", config.host]
        region = [*common, *self._livekit_arg(), "--access-token-ttl-s", str(config.access_token_ttl_s)]
        if piece == "primary":
            return ["region", *region, "--port", str(ports.primary), "--region", PRIMARY_REGION,
                    "--data-dir", str(data_dir / PRIMARY_REGION)]  # fmt: skip
        if piece == "replica":
            follow = ["--primary-url", endpoints.primary_url] if "primary" in endpoints.ports else []
            if config.replica_forwards_writes:
                follow.append("--forward-writes")
            return ["region", *region, *follow, "--port", str(ports.replica), "--region", REPLICA_REGION,
                    "--role", "replica", "--data-dir", str(data_dir / REPLICA_REGION),
                    "--replication-lag-ms", str(config.replication_lag_ms)]  # fmt: skip
        if piece == "livekit":
            return ["livekit", *common, "--port", str(ports.livekit),
                    "--join-timeout-s", str(config.livekit_join_timeout_s)]  # fmt: skip
        if piece == "edge":
            # The edge needs an origin per region; with one region running, both names point at it.
            regions = [piece for piece in ("primary", "replica") if piece in endpoints.ports]
            if not regions:
                raise TargetUnreachable("the edge needs a region server: start 'primary' or 'replica' with it")
            primary_url = endpoints.url(regions[0])
            replica_url = endpoints.url(regions[-1])
            origins = ["--origin", f"{PRIMARY_REGION}={primary_url}", "--origin", f"{REPLICA_REGION}={replica_url}"]
            return ["edge", *common, "--port", str(ports.edge), *origins,
                    "--health-interval-s", str(config.health_interval_s)]  # fmt: skip
        raise ValueError(f"unknown piece {piece!r}; valid: {', '.join(PIECES)}")

    def _livekit_arg(self) -> list[str]:
        if "livekit" in self.endpoints.ports:
            return ["--livekit-url", self.endpoints.livekit_url]
        return ["--livekit-url", f"ws://{self.config.host}:{self.config.ports.livekit}"]

    def start(self) -> ReferenceStack:
        data_dir = self.config.data_dir
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="harness-stack-")
            data_dir = Path(self._tmp.name)
        data_dir.mkdir(parents=True, exist_ok=True)
        log_dir = self.config.log_dir or data_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        # LiveKit first (regions mint tokens pointing at it), then the regions, then the edge in front of them.
        order = [p for p in ("livekit", "primary", "replica", "edge") if p in self.config.pieces]
        try:
            for piece in order:
                process = PieceProcess(piece, self._argv(piece, data_dir), log_dir / f"{piece}.log")
                self.processes[piece] = process
                self.endpoints.ports[piece] = process.port
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for piece in reversed(list(self.processes)):
            self.processes.pop(piece).stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> ReferenceStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
