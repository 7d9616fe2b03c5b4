"""The master's side of a distributed run (`harness run … --master --expect-workers N`): how many workers, the two
ports it listens on, and the bootstrap that hands each remote worker its configuration while the Locust master
waits for them."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
from collections.abc import Iterator
from typing import TextIO

from harness.errors import ConfigError
from harness.loadgen.cluster import ClusterConfig, LocustCluster
from harness.model.profile import Profile
from harness.run import shaping as china
from harness.run.bootstrap import BootstrapServer, WorkerConfigs, bootstrap_port, harness_env
from harness.run.options import RunOptions

SPLIT_SEARCH = 64
"""How far from the asked count the hint looks for worker counts the groups' weights divide into."""


def fits(profile: Profile, workers: int) -> bool:
    """Whether `workers` split over the groups by weight (china.worker_split, as local runs do) adds up exactly:
    Locust gives every worker the same number of users, so a group's workers are its share of the users."""
    return sum(china.worker_split(profile, workers).values()) == workers


def nearest_fits(profile: Profile, workers: int) -> list[int]:
    """The closest counts below and above `workers` that fit (at most one each; none beyond SPLIT_SEARCH)."""
    least = len(profile.groups)
    below = next((n for n in range(workers - 1, max(least, workers - SPLIT_SEARCH) - 1, -1) if fits(profile, n)), None)
    above = next((n for n in range(max(workers + 1, least), workers + SPLIT_SEARCH) if fits(profile, n)), None)
    return [n for n in (below, above) if n is not None]


def distributed_workers(profile: Profile, options: RunOptions, multi_group: bool) -> int:
    """--expect-workers, checked against what the run can do with remote workers."""
    if options.kernel:
        raise ConfigError(
            "--kernel with --master: kernel shaping puts local workers in a network namespace; remote workers "
            "get their China path from Toxiproxy (--toxiproxy-advertise-host) instead: drop --kernel"
        )
    workers = options.expect_workers
    if multi_group and not fits(profile, workers):
        split = china.worker_split(profile, workers)
        weights = ", ".join(f"{name} {g.weight}" for name, g in profile.groups.items())
        shares = ", ".join(f"{name} {count}" for name, count in split.items())
        counts = " or ".join(str(n) for n in nearest_fits(profile, workers))
        raise ConfigError(
            f"--expect-workers {workers}: profile {profile.name}'s user groups (weights: {weights}) need at least one "
            f"worker each and workers in proportion to their weights; {workers} split that way would be {shares} "
            f"({sum(split.values())} workers); pass --expect-workers {counts}"
        )
    return workers


class MasterPorts:
    """Locust's port and the bootstrap's (the next one), bound from the start of the run: a port in use, or an
    address that is not this machine's, is a clear error before anything starts, and the free ports the reference
    stack and Toxiproxy take meanwhile cannot be these. Locust's is let go just before the Locust master binds it;
    the bootstrap listens on its socket as it is."""

    def __init__(self, bind: str, port: int) -> None:
        self.bind = bind
        self.port = port
        family = socket.AF_INET6 if ipaddress.ip_address(bind).version == 6 else socket.AF_INET
        self._bootstrap: socket.socket | None = None
        self._locust: socket.socket | None = _bound(family, bind, port, port, "Locust's port for the workers")
        try:
            self._bootstrap = _bound(
                family, bind, bootstrap_port(port), port, "the worker bootstrap, --master-port + 1"
            )
        except BaseException:
            self.close()
            raise

    def release_locust(self) -> None:
        if self._locust is not None:
            self._locust.close()
            self._locust = None

    def take_bootstrap(self) -> socket.socket:
        sock, self._bootstrap = self._bootstrap, None
        assert sock is not None, "the bootstrap's socket is taken once"
        return sock

    def close(self) -> None:
        self.release_locust()
        if self._bootstrap is not None:
            self._bootstrap.close()
            self._bootstrap = None


def _bound(family: socket.AddressFamily, bind: str, port: int, master_port: int, what: str) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Locust and http.server bind theirs
        sock.bind((bind, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"--master-port {master_port}: {bind}:{port} ({what}) is already in use; stop what listens there "
                "or pick another --master-port (the run uses it and the next port)"
            ) from None
        raise ConfigError(
            f"--master-bind {bind}: cannot listen on {bind}:{port} ({exc.strerror or exc}); give an address of this "
            "machine (e.g. 0.0.0.0 for every interface, or 127.0.0.1)"
        ) from None
    return sock


@contextlib.contextmanager
def master_ports(options: RunOptions) -> Iterator[MasterPorts | None]:
    """The distributed master's ports, held until the run ends (None for local runs)."""
    if not options.master:
        yield None
        return
    ports = MasterPorts(options.master_bind, options.master_port)
    try:
        yield ports
    finally:
        ports.close()


@contextlib.contextmanager
def remote_workers(
    options: RunOptions, config: ClusterConfig, cluster: LocustCluster, ports: MasterPorts | None, log: TextIO
) -> Iterator[None]:
    """While the run goes on: the bootstrap remote workers ask for their configuration (nothing for local runs)."""
    if not options.master or ports is None:
        yield
        return
    port = bootstrap_port(cluster.master_port)
    server = BootstrapServer(
        WorkerConfigs(config, cluster.master_port, harness_env()), options.master_bind, port, ports.take_bootstrap()
    )
    print(
        f"harness: master waiting up to {options.workers_wait_s} s for {config.workers} worker(s) on "
        f"{options.master_bind}:{cluster.master_port} (bootstrap :{port}): "
        f"`harness worker --master-host <this host> --master-port {cluster.master_port}`",
        file=log,
        flush=True,
    )
    try:
        yield
    finally:
        server.stop()
