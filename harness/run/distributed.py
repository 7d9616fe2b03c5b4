"""The master's side of a distributed run (`harness run … --master --expect-workers N`): how many workers, and the
bootstrap that hands each remote worker its configuration while the Locust master waits for them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TextIO

from harness.errors import ConfigError
from harness.loadgen.cluster import ClusterConfig, LocustCluster
from harness.model.profile import Profile
from harness.run import shaping as china
from harness.run.bootstrap import BootstrapServer, WorkerConfigs, bootstrap_port, harness_env
from harness.run.options import RunOptions


def distributed_workers(profile: Profile, options: RunOptions, multi_group: bool) -> int:
    """--expect-workers, checked against what the run can do with remote workers."""
    if options.kernel:
        raise ConfigError(
            "--kernel with --master: kernel shaping puts local workers in a network namespace; remote workers "
            "get their China path from Toxiproxy (--toxiproxy-advertise-host) instead: drop --kernel"
        )
    workers = options.expect_workers
    if multi_group:
        split = china.worker_split(profile, workers)
        if sum(split.values()) != workers:
            need = ", ".join(f"{name} {count}" for name, count in split.items())
            raise ConfigError(
                f"--expect-workers {workers}: profile {profile.name}'s groups need {sum(split.values())} workers "
                f"({need}); pass --expect-workers {sum(split.values())} or more"
            )
    return workers


@contextlib.contextmanager
def remote_workers(options: RunOptions, config: ClusterConfig, cluster: LocustCluster, log: TextIO) -> Iterator[None]:
    """While the run goes on: the bootstrap remote workers ask for their configuration (nothing for local runs)."""
    if not options.master:
        yield
        return
    port = bootstrap_port(cluster.master_port)
    server = BootstrapServer(WorkerConfigs(config, cluster.master_port, harness_env()), options.master_bind, port)
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
