"""Start and stop the embedded reference stack: each piece is its own process, on the ports asked (0 = any).

    with ReferenceStack(StackConfig(ports=StackPorts.any())) as stack:
        stack.endpoints.primary_url, stack.endpoints.edge_url, ...

    edge :54320 ──► Singapore primary :54321 ──(change log)──► Japan replica :54322
                └─► Japan replica (CN viewers, or Singapore down)          LiveKit stand-in :7880

Each piece is a `procs.PieceProcess`: it gets SIGTERM when the parent dies, so a killed run never leaves servers
behind.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.errors import TargetUnreachable
from harness.model import keys
from harness.procs.piece import PieceProcess

PRIMARY_REGION = "ap-southeast-1"
REPLICA_REGION = "ap-northeast-1"
REGION_FACTORY = "harness.refstack.region.app:build_app_from_options"
LIVEKIT_FACTORY = "harness.refstack.livekit.server:build_app"
EDGE_FACTORY = "harness.refstack.edge.server:build_app"


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
    """Where each region keeps its PostgreSQL cluster (`<data_dir>/<region>/postgres`); None = a temporary directory
    removed on stop."""
    migrations_dir: Path | None = None
    """Supabase migrations the Singapore primary applies at start (the replica copies its database); None = the
    app's own (supabase/migrations/)."""
    synchronous_replica: bool = False
    """Singapore waits for Japan to confirm each commit (RPO 0, slower writes)."""
    bcrypt_cost: int = 4
    """Password hash cost in both regions. GoTrue uses bcrypt cost 10 (about 60 ms of CPU a sign-in); the stack uses
    bcrypt's minimum, 4 (about 1 ms), so a sign-in storm at ramp-up measures the app, not the stand-in's hashing on
    the load generator's own cores. A bare region server (`target up --region`) keeps GoTrue's 10."""
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
        """Endpoint names as the deployment's production.env spells them (docs/configuration.md)."""
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


class ReferenceStack:
    """The whole reference stack (or the pieces asked for), as a context manager."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self.endpoints = Endpoints(self.config.host)
        self.processes: dict[str, PieceProcess] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def _spec(self, piece: str, data_dir: Path) -> tuple[str, int, dict[str, Any]]:
        """(factory, port, factory options) of one piece, for `PieceProcess`."""
        config, ports, endpoints = self.config, self.config.ports, self.endpoints
        region: dict[str, Any] = {"livekit_url": self._livekit_url(), "access_token_ttl_s": config.access_token_ttl_s,
                                  "bcrypt_cost": config.bcrypt_cost}  # fmt: skip
        if piece == "primary":
            region |= {"region": PRIMARY_REGION, "data_dir": str(data_dir / PRIMARY_REGION),
                       "synchronous_replica": config.synchronous_replica}  # fmt: skip
            if config.migrations_dir is not None:
                region["migrations_dir"] = str(config.migrations_dir)
            return REGION_FACTORY, ports.primary, region
        if piece == "replica":
            if "primary" in endpoints.ports:
                region["primary_url"] = endpoints.primary_url
            region |= {"region": REPLICA_REGION, "role": "replica", "data_dir": str(data_dir / REPLICA_REGION),
                       "forward_writes": config.replica_forwards_writes,
                       "replication_lag_ms": config.replication_lag_ms}  # fmt: skip
            return REGION_FACTORY, ports.replica, region
        if piece == "livekit":
            return LIVEKIT_FACTORY, ports.livekit, {"join_timeout_s": config.livekit_join_timeout_s}
        if piece == "edge":
            # The edge needs an origin per region; with one region running, both names point at it.
            regions = [piece for piece in ("primary", "replica") if piece in endpoints.ports]
            if not regions:
                raise TargetUnreachable("the edge needs a region server: start 'primary' or 'replica' with it")
            origins = {PRIMARY_REGION: endpoints.url(regions[0]), REPLICA_REGION: endpoints.url(regions[-1])}
            return EDGE_FACTORY, ports.edge, {"origins": origins, "health_interval_s": config.health_interval_s}
        raise ValueError(f"unknown piece {piece!r}; valid: {', '.join(PIECES)}")

    def _livekit_url(self) -> str:
        if "livekit" in self.endpoints.ports:
            return self.endpoints.livekit_url
        return f"ws://{self.config.host}:{self.config.ports.livekit}"

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
                factory, port, options = self._spec(piece, data_dir)
                process = PieceProcess(
                    piece, factory, log_dir / f"{piece}.log", options=options, host=self.config.host, port=port
                )
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
