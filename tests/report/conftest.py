"""Fixtures for the report tests: a synthetic result and its result.json."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_synth import synthetic

from harness.model.result import Result, dump_result


@pytest.fixture
def result() -> Result:
    return synthetic()


@pytest.fixture
def result_path(tmp_path: Path, result: Result) -> Path:
    return dump_result(result, tmp_path / "runs" / "run-synthetic" / "result.json")
