"""model/rate_check.py's think times are the locustfiles' `wait_time = between(a, b)`: the rate bound follows the
classes it describes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.model.rate_check import ITERATIONS

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "locustfiles"))


@pytest.mark.parametrize("module, cls", [("messaging", "MessagingUser"), ("web", "WebUser"),
                                         ("files", "FileTransferUser"), ("meetings", "MeetingUser")])  # fmt: skip
def test_think_times_match_the_user_classes(module: str, cls: str) -> None:
    user = getattr(__import__(module), cls)
    # between() draws at random: read its bounds from the closure
    wait = user.wait_time
    cells = {n: c.cell_contents for n, c in zip(wait.__code__.co_freevars, wait.__closure__ or (), strict=True)}
    low, high = cells["min_wait"], cells["max_wait"]
    assert (ITERATIONS[cls].think_min_s, ITERATIONS[cls].think_max_s) == (low, high)
