"""A reference stack (Singapore primary, Japan replica, edge) per test, and DR contexts acting on it.

Failover changes the stack for good, so each test that acts gets a stack of its own (about 4 s to start).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.dr.actions import DrContext
from harness.dr.edge import EdgeSwitch
from harness.dr.journal import Journal
from harness.dr.switch import TrafficSwitch
from harness.dr.topology import JAPAN, SINGAPORE, Region, Topology
from harness.model import keys
from harness.model.target_config import Secret
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ReferenceStack]:
    config = StackConfig(ports=StackPorts.any(), pieces=("primary", "replica", "edge"), data_dir=tmp_path / "stack",
                         health_interval_s=0.5)  # fmt: skip
    with ReferenceStack(config) as running:
        yield running


def topology_of(stack: ReferenceStack, public_url: str | None = None) -> Topology:
    endpoints = stack.endpoints
    return Topology(
        home=Region(SINGAPORE, endpoints.primary_url),
        standby=Region(JAPAN, endpoints.replica_url),
        public_url=public_url or endpoints.edge_url,
        service_key=Secret(keys.SERVICE_ROLE_KEY),
        anon_key=Secret(keys.ANON_KEY),
        timeout_s=5.0,
    )


def context_of(stack: ReferenceStack, state_dir: Path, *, edge: bool = True, **kwargs: object) -> DrContext:
    topology = topology_of(stack)
    switches: list[TrafficSwitch] = [EdgeSwitch(topology)] if edge else []
    return DrContext(topology, Journal(state_dir, out=None), switches=switches, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS_* variable, empty ~/.aws files, no instance metadata: boto3 finds nothing anywhere."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
