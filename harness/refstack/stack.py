"""Start and stop the embedded reference stack: each piece is its own process, on the ports asked (0 = any).

    with ReferenceStack(StackConfig(ports=StackPorts.any())) as stack:
        stack.endpoints.primary_url, stack.endpoints.edge_url, ...

    edge :54320 ──► Singapore primary :54321 ──(change log)──► Japan replica :54322
                └─► Japan replica (CN viewers, or Singapore down)          LiveKit stand-in :7880

Each piece is a `procs.PieceProcess`: it gets SIGTERM when the parent dies, so a killed run never leaves servers
behind.

Faults for failover drills:
    stack.kill("primary")      SIGKILL the region and its PostgreSQL; returns once both ports are closed (crash.py)
    stack.restart("primary")   the same piece again: same options, port, data dir and PostgreSQL port
    StackConfig(origin_proxies=True)
                               the edge reaches each region through a Toxiproxy proxy (origin_proxies.py):
                               disable `origin_ap-southeast-1` to partition Singapore from the edge
    StackConfig(replication_proxy=True)
                               Japan streams WAL through the proxy `replication_ap-southeast-1` (a bandwidth toxic
                               makes an asynchronous replica fall behind)
    POST <edge>/_edge/admin/primary {"region": ...}   the DR traffic switch (edge/admin.py; service-role key)

In containers (docker-compose.yml) pieces run apart: `StackConfig.elsewhere` gives the URLs of those this stack does
not start (an edge alone proxies to the regions' container; the regions hand out the LiveKit container's URL with
meeting tokens), and a wildcard bind (0.0.0.0) reaches the stack's own pieces on loopback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.errors import ConfigError, TargetUnreachable
from harness.model import keys
from harness.procs import leftovers
from harness.procs.piece import PieceProcess
from harness.refstack import crash, origin_proxies

PRIMARY_REGION = "ap-southeast-1"
REPLICA_REGION = "ap-northeast-1"
REGION_FACTORY = "harness.refstack.region.app:build_app_from_options"
LIVEKIT_FACTORY = "harness.refstack.livekit.server:build_app"
SECRET_OPTIONS = frozenset({"api_secret", "livekit_api_secret"})
"""Factory options passed through a piece's environment rather than its command line (procs/launch.py)."""
EDGE_FACTORY = "harness.refstack.edge.server:build_app"
TOXIPROXY_PIECE = "toxiproxy"
REPLICATION_PROXY = f"replication_{PRIMARY_REGION}"
"""The proxy Japan's WAL stream takes with `StackConfig.replication_proxy`."""
REGION_OF = {"primary": PRIMARY_REGION, "replica": REPLICA_REGION}
POSTGRES_DIR = "postgres"
"""A region's cluster directory under `<data_dir>/<region>/` (the region server's lifecycle.POSTGRES_DIR)."""
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
"""Bind addresses meaning "every interface" (a container): the pieces then reach each other on loopback."""


@dataclass
class StackPorts:
    edge: int = 54320
    primary: int = 54321
    replica: int = 54322
    livekit: int = 7880
    toxiproxy: int = 8475
    """The embedded Toxiproxy API (only with `StackConfig.origin_proxies`). Not Toxiproxy's usual 8474, which the
    network shaper's own Toxiproxy may hold during a run; the origin proxies themselves take any free port."""

    @classmethod
    def any(cls) -> StackPorts:
        """Let the OS choose every port (tests, and runs beside another stack)."""
        return cls(edge=0, primary=0, replica=0, livekit=0, toxiproxy=0)


PIECES = ("primary", "replica", "livekit", "edge")
START_ORDER = ("livekit", "primary", TOXIPROXY_PIECE, "replica", "edge")
"""LiveKit first (regions mint tokens pointing at it), Singapore, the proxies (Japan may replicate through one),
Japan, then the edge in front of them all."""


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
    livekit_api_key: str = keys.LIVEKIT_API_KEY
    livekit_api_secret: str = keys.LIVEKIT_API_SECRET
    """The key pair the LiveKit stand-in accepts and the regions' `livekit-token` signs with (default: the local
    demo pair; `target up` takes LIVEKIT_API_KEY / LIVEKIT_API_SECRET from the environment or --env-file)."""
    advertise_host: str | None = None
    """The host clients elsewhere reach the stack at (a compose service name), used in the LiveKit URL the token
    function hands out; None: `host`."""
    origin_proxies: bool = False
    replication_proxy: bool = False
    """Japan streams Singapore's WAL through a Toxiproxy proxy (`replication_ap-southeast-1`), so a drill can slow
    or cut the replication link (a bandwidth toxic makes an asynchronous replica fall behind under load)."""
    """Start an embedded Toxiproxy and put a proxy (`origin_<region>`) in front of each region's HTTP port; the edge
    uses the proxied URLs, replication and write forwarding the direct ones (origin_proxies.py)."""
    elsewhere: dict[str, str] = field(default_factory=dict)
    """Pieces running elsewhere (other containers: docker-compose.yml), by URL: "livekit" → the LiveKit URL the
    regions hand out with meeting tokens; "primary"/"replica" → the origins an edge started without them proxies
    to. Only for pieces this stack does not start (ConfigError otherwise)."""


@dataclass
class Endpoints:
    host: str
    ports: dict[str, int] = field(default_factory=dict)
    origin_ports: dict[str, int] = field(default_factory=dict)
    """Region piece → listen port of its origin proxy (only with `StackConfig.origin_proxies`)."""
    proxy_ports: dict[str, int] = field(default_factory=dict)
    """Other proxies by name → listen port: `replication_ap-southeast-1` with `StackConfig.replication_proxy`."""
    livekit_api_key: str = keys.LIVEKIT_API_KEY

    def url(self, piece: str, scheme: str = "http") -> str:
        return f"{scheme}://{self.host}:{self.ports[piece]}"

    def origin_url(self, piece: str) -> str:
        """The URL the edge uses for a region ("primary"/"replica"): its proxy's, or its own without proxies."""
        if piece in self.origin_ports:
            return f"http://{self.host}:{self.origin_ports[piece]}"
        return self.url(piece)

    @property
    def toxiproxy_url(self) -> str:
        """The Toxiproxy API of the origin proxies (KeyError without `StackConfig.origin_proxies`)."""
        return self.url(TOXIPROXY_PIECE)

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
            out["LIVEKIT_API_KEY"] = self.livekit_api_key
        out["SUPABASE_ANON_KEY"] = keys.ANON_KEY
        return out


def connect_host(bind: str) -> str:
    """The address pieces and callers use to reach a piece bound to `bind`: loopback for a wildcard bind."""
    return "127.0.0.1" if bind in WILDCARD_HOSTS else bind


class ReferenceStack:
    """The whole reference stack (or the pieces asked for), as a context manager."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self.endpoints = Endpoints(connect_host(self.config.host), livekit_api_key=self.config.livekit_api_key)
        self.processes: dict[str, PieceProcess] = {}
        self._tmp: Path | None = None
        """The data directory made when none was configured: recorded (procs/leftovers.py), so a later run removes
        it after a kill -9 of this one."""
        self._data_dir: Path | None = None
        self._log_dir: Path | None = None
        self._specs: dict[str, tuple[str, dict[str, Any]]] = {}
        """piece → (factory, options) it was started with, for restart()."""
        self._postgres_ports: dict[str, int] = {}
        """region piece → its PostgreSQL port, kept for a restart (a replica's standby follows that port)."""
        self._proxied: set[str] = set()
        """Names of the proxies the running Toxiproxy has."""

    def _spec(self, piece: str, data_dir: Path) -> tuple[str, int, dict[str, Any]]:
        """(factory, port, factory options) of one piece, for `PieceProcess`."""
        config, ports, endpoints = self.config, self.config.ports, self.endpoints
        region: dict[str, Any] = {"livekit_url": self._livekit_url(), "access_token_ttl_s": config.access_token_ttl_s,
                                  "bcrypt_cost": config.bcrypt_cost, "livekit_api_key": config.livekit_api_key,
                                  "livekit_api_secret": config.livekit_api_secret}  # fmt: skip
        if piece == "primary":
            region |= {"region": PRIMARY_REGION, "data_dir": str(data_dir / PRIMARY_REGION),
                       "synchronous_replica": config.synchronous_replica}  # fmt: skip
            if config.migrations_dir is not None:
                region["migrations_dir"] = str(config.migrations_dir)
            return REGION_FACTORY, ports.primary, region
        if piece == "replica":
            if "primary" in endpoints.ports:
                region["primary_url"] = endpoints.primary_url
            if REPLICATION_PROXY in endpoints.proxy_ports:
                region["primary_postgres"] = f"{config.host}:{endpoints.proxy_ports[REPLICATION_PROXY]}"
            region |= {"region": REPLICA_REGION, "role": "replica", "data_dir": str(data_dir / REPLICA_REGION),
                       "forward_writes": config.replica_forwards_writes,
                       "replication_lag_ms": config.replication_lag_ms}  # fmt: skip
            return REGION_FACTORY, ports.replica, region
        if piece == "livekit":
            return LIVEKIT_FACTORY, ports.livekit, {"join_timeout_s": config.livekit_join_timeout_s,
                                                    "api_key": config.livekit_api_key,
                                                    "api_secret": config.livekit_api_secret}  # fmt: skip
        if piece == "edge":
            # The edge needs an origin per region; with one region running, both names point at it.
            urls = {piece: endpoints.origin_url(piece) if piece in endpoints.ports else config.elsewhere.get(piece)
                    for piece in REGION_OF}  # fmt: skip
            regions = [url for url in urls.values() if url]
            if not regions:
                raise TargetUnreachable(
                    "the edge needs a region server: start 'primary' or 'replica' with it, or give the URL of one "
                    "running elsewhere (--primary-url, --replica-url)"
                )
            origins = {PRIMARY_REGION: regions[0], REPLICA_REGION: regions[-1]}
            # The service-role key is the local demo key (harness.model.keys): it protects nothing.
            return EDGE_FACTORY, ports.edge, {"origins": origins, "health_interval_s": config.health_interval_s,
                                              "admin_token": keys.SERVICE_ROLE_KEY}  # fmt: skip
        if piece == TOXIPROXY_PIECE:
            return origin_proxies.TOXIPROXY_FACTORY, ports.toxiproxy, {"host_for_listeners": config.host}
        raise ValueError(f"unknown piece {piece!r}; valid: {', '.join(PIECES)}")

    def _livekit_url(self) -> str:
        if "livekit" in self.config.elsewhere:
            return self.config.elsewhere["livekit"]
        if self.config.advertise_host:
            return f"ws://{self.config.advertise_host}:{self.endpoints.ports.get('livekit', self.config.ports.livekit)}"
        if "livekit" in self.endpoints.ports:
            return self.endpoints.livekit_url
        return f"ws://{self.endpoints.host}:{self.config.ports.livekit}"

    def _wanted(self) -> list[str]:
        proxied = self.config.origin_proxies or self.config.replication_proxy
        wanted = set(self.config.pieces) | ({TOXIPROXY_PIECE} if proxied else set())
        return [piece for piece in START_ORDER if piece in wanted]

    def start(self) -> ReferenceStack:
        elsewhere = sorted(set(self.config.elsewhere) & set(self.config.pieces))
        if elsewhere:
            raise ConfigError(
                f"--{elsewhere[0]}-url names a {elsewhere[0]} running elsewhere, but this stack starts one too; "
                f"drop the URL, or leave {elsewhere[0]!r} out of --only"
            )
        data_dir = self.config.data_dir
        if data_dir is None:
            self._tmp = data_dir = leftovers.temporary_directory("harness-stack-")
        data_dir.mkdir(parents=True, exist_ok=True)
        log_dir = self.config.log_dir or data_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self._data_dir, self._log_dir = data_dir, log_dir
        try:
            for piece in self._wanted():
                factory, port, options = self._spec(piece, data_dir)
                self._specs[piece] = (factory, options)
                self._launch(piece, factory, port, options)
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, piece: str, factory: str, port: int, options: dict[str, Any]) -> None:
        assert self._log_dir is not None, "start() sets the log directory"
        public = {k: v for k, v in options.items() if k not in SECRET_OPTIONS}
        secret = {k: v for k, v in options.items() if k in SECRET_OPTIONS}
        process = PieceProcess(
            piece, factory, self._log_dir / f"{piece}.log", options=public, secret_options=secret,
            host=self.config.host, port=port,
        )  # fmt: skip
        self.processes[piece] = process
        # Keep start order, so stop() (reverse order) stays right after a restart.
        ordered = [(p, self.processes[p]) for p in START_ORDER if p in self.processes]
        self.processes.clear()
        self.processes.update(ordered)
        self.endpoints.ports[piece] = process.port
        if piece in REGION_OF:
            postmaster = crash.read_postmaster(self._cluster_dir(piece))
            if postmaster is not None:
                self._postgres_ports[piece] = postmaster.port
        if piece == TOXIPROXY_PIECE:
            self._proxied.clear()  # a (re)started Toxiproxy has no proxies: make them all again, on the same ports
        if TOXIPROXY_PIECE in self.processes:
            self._create_proxies()

    def _create_proxies(self) -> None:
        """The proxies not made yet: one per running region's HTTP port (origin proxies), and Singapore's PostgreSQL
        (the replication proxy); on a Toxiproxy restart again on the listen ports already in use."""
        host, api = self.config.host, self.endpoints.toxiproxy_url
        wanted: list[tuple[str, str, int, dict[str, int]]] = []
        if self.config.origin_proxies:
            origins = self.endpoints.origin_ports
            wanted += [(piece, origin_proxies.proxy_name(region), self.endpoints.ports[piece], origins)
                       for piece, region in REGION_OF.items() if piece in self.endpoints.ports]  # fmt: skip
        if self.config.replication_proxy and "primary" in self._postgres_ports:
            wanted.append((REPLICATION_PROXY, REPLICATION_PROXY, self._postgres_ports["primary"],
                           self.endpoints.proxy_ports))  # fmt: skip
        for key, name, upstream, ports in wanted:
            if name in self._proxied:
                continue
            ports[key] = origin_proxies.create(api, name, host, upstream, ports.get(key, 0))
            self._proxied.add(name)

    def _cluster_dir(self, piece: str) -> Path:
        assert self._data_dir is not None, "start() sets the data directory"
        return self._data_dir / REGION_OF[piece] / POSTGRES_DIR

    def _known(self, piece: str) -> None:
        if piece not in self._specs:
            raise ConfigError(f"piece {piece!r} was not started in this stack; started: {', '.join(self._specs)}")

    def postgres_port(self, piece: str) -> int:
        """The port of a region piece's PostgreSQL (benchmarks and tests that talk to the database directly)."""
        return self._postgres_ports[piece]

    def kill(self, piece: str) -> None:
        """SIGKILL a piece (a region: its server process and its PostgreSQL) and return once its ports are closed.

        The piece leaves `processes` and its port stays in `endpoints`, for restart(). TargetUnreachable when
        something is still there after `crash.KILL_WAIT_S`."""
        self._known(piece)
        process = self.processes.pop(piece, None)
        if process is None:
            return  # already killed
        ports, pids = [self.endpoints.ports[piece]], [process.pid]
        if piece in REGION_OF:
            postmaster = crash.read_postmaster(self._cluster_dir(piece))
            if postmaster is not None:
                crash.kill_postmaster(postmaster)  # first: otherwise it gets SIGTERM and shuts down cleanly
                pids.append(postmaster.pid)
                ports.append(postmaster.port)
                self._postgres_ports[piece] = postmaster.port
        if piece == TOXIPROXY_PIECE:
            ports += list(self.endpoints.origin_ports.values()) + list(self.endpoints.proxy_ports.values())
        process.kill_group()
        process.close()
        crash.wait_gone(f"kill({piece!r})", pids, self.config.host, ports)

    def restart(self, piece: str) -> None:
        """Start a piece again with the options, port and data directory it had (a running one is stopped first).

        A region gets its old PostgreSQL port back, so a standby following it reconnects. It comes up as its data
        says: Singapore restarted after Japan's promotion is a stale primary (failback demotes it)."""
        self._known(piece)
        if piece in self.processes:
            self.processes.pop(piece).stop()
        factory, options = self._specs[piece]
        options = dict(options)
        if piece in self._postgres_ports:
            options["postgres_port"] = self._postgres_ports[piece]
        self._launch(piece, factory, self.endpoints.ports[piece], options)

    def exited(self) -> dict[str, int]:
        """Pieces that exited on their own (not by `kill` or `stop`), with their exit codes: a supervisor's check."""
        return {piece: code for piece, process in self.processes.items() if (code := process.exit_code) is not None}

    def stop(self) -> None:
        for piece in reversed(list(self.processes)):
            self.processes.pop(piece).stop()
        if self._tmp is not None:
            leftovers.remove_temporary_directory(self._tmp)
            self._tmp = None

    def __enter__(self) -> ReferenceStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
