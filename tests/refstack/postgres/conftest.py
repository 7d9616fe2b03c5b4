"""A started PostgreSQL cluster per test (copied from the cached initdb template: about 0.3 s)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.refstack.postgres.cluster import Cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    started = Cluster(tmp_path / "pg")
    started.init()
    started.start()
    try:
        yield started
    finally:
        started.stop()
