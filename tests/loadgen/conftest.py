"""Fixtures for the orchestrator tests: one reference stack per module, described as a production.env file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts
from harness.run.target import from_reference


@pytest.fixture(scope="module")
def stack_env_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A running reference stack, described as a production.env file (what `--env-file` reads)."""
    with ReferenceStack(StackConfig(ports=StackPorts.any())) as stack:
        target = from_reference(stack.endpoints)
        path = tmp_path_factory.mktemp("target") / "stack.env"
        path.write_text("".join(f"{k}={v}\n" for k, v in target.env.items()), encoding="utf-8")
        yield path
