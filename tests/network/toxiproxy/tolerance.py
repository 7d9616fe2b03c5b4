"""Timing tolerance for toxic tests (Toxiproxy's toxics tests use the same idea)."""

from __future__ import annotations


def assert_close(actual: float, expected: float, delta: float, what: str = "value") -> None:
    """Fail unless |actual - expected| <= delta, naming the measured value and the allowed range."""
    assert abs(actual - expected) <= delta, f"{what} was {actual:.3f}, expected {expected:.3f} ± {delta:.3f}"
