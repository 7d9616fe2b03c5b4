"""Fixtures: a LiveKit stand-in on a free loopback port per test (real sockets, no mocks)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.procs.serving import BackgroundServer, background
from harness.refstack.livekit.server import build_app


@pytest.fixture
def server() -> Iterator[BackgroundServer]:
    with background(build_app) as srv:
        yield srv


@pytest.fixture
def fast_timeout_server() -> Iterator[BackgroundServer]:
    """A stand-in whose join timer (60 s on a real server) fires after half a second."""
    with background(lambda: build_app(join_timeout_s=0.5)) as srv:
        yield srv
