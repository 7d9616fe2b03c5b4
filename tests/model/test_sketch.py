"""The latency sketch: 1 % relative accuracy, exact merges, compact JSON form."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.model.sketch import RELATIVE_ACCURACY, Sketch, merged

QS = [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]


def true_quantile(sorted_values: list[float], q: float) -> float:
    """The sample at the sketch's rank definition: index floor(q * (n - 1))."""
    return sorted_values[math.floor(q * (len(sorted_values) - 1))]


def assert_within_bound(estimate: float | None, exact: float) -> None:
    assert estimate is not None
    assert abs(estimate - exact) <= RELATIVE_ACCURACY * abs(exact) + 1e-9, (estimate, exact)


@pytest.mark.parametrize(
    "draw",
    [
        lambda r: r.lognormvariate(4, 1.2),  # typical latency: long right tail
        lambda r: r.uniform(0.05, 60_000),  # sub-ms to a minute
        lambda r: r.expovariate(1 / 200),
        lambda r: 1000.0,  # constant
    ],
)
def test_quantiles_are_within_one_percent_of_the_exact_sample(draw):
    rnd = random.Random(42)
    values = [draw(rnd) for _ in range(20_000)]
    s = Sketch()
    for v in values:
        s.add(v)
    ordered = sorted(values)
    for q, est in zip(QS, s.quantiles(QS), strict=True):
        assert_within_bound(est, true_quantile(ordered, q))
    assert s.count == len(values)
    assert s.min_ms == ordered[0] and s.max_ms == ordered[-1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0.001, max_value=1e6, allow_nan=False), min_size=1, max_size=300))
def test_any_sample_set_keeps_the_bound(values):
    s = Sketch()
    for v in values:
        s.add(v)
    ordered = sorted(values)
    for q in (0.5, 0.95, 0.99):
        assert_within_bound(s.quantile(q), true_quantile(ordered, q))


def test_samples_split_across_two_workers_merge_to_exactly_the_same_buckets():
    rnd = random.Random(7)
    values = [rnd.lognormvariate(5, 1) for _ in range(10_000)] + [0.0, 0.0]
    one = Sketch()
    worker_a, worker_b = Sketch(), Sketch()
    for i, v in enumerate(values):
        one.add(v)
        (worker_a if i % 3 else worker_b).add(v)
    # Ship through the JSON form, as a worker report would.
    a = Sketch.from_dict(json.loads(json.dumps(worker_a.to_dict())))
    b = Sketch.from_dict(json.loads(json.dumps(worker_b.to_dict())))
    master = merged([a, b])
    assert master.bins == one.bins
    assert master.zeros == one.zeros == 2
    assert master.count == one.count
    assert master.quantiles(QS) == one.quantiles(QS)
    assert master == one


def test_json_form_round_trips_and_is_compact():
    s = Sketch()
    for v in (1.0, 1.5, 2.0, 250.0, 250.1, 90_000.0):
        s.add(v)
    d = s.to_dict()
    text = json.dumps(d)
    back = Sketch.from_dict(json.loads(text))
    assert back == s
    assert back.quantiles(QS) == s.quantiles(QS)
    assert back.sum_ms == pytest.approx(s.sum_ms)
    # Keys are delta-encoded: after the first, small positive steps rather than absolute bucket indices.
    assert all(k > 0 for k in d["k"][1:])
    assert sum(d["c"]) == s.count


def test_zero_and_negative_values_land_in_the_zero_bucket():
    s = Sketch()
    for v in (0.0, 0.0, -1.0, 5.0):
        s.add(v)
    assert s.zeros == 3
    assert s.quantile(0.5) == 0.0
    assert s.quantile(1.0) == 5.0


def test_empty_sketch_has_no_quantiles_and_serializes():
    s = Sketch()
    assert s.quantile(0.95) is None
    assert s.mean_ms is None
    assert Sketch.from_dict(s.to_dict()) == s


def test_histogram_counts_every_sample():
    s = Sketch()
    for v in (0.0, 10.0, 10.05, 100.0):
        s.add(v)
    buckets = list(s.histogram())
    assert sum(n for _, _, n in buckets) == 4
    assert buckets[0] == (0.0, 0.0, 1)
    assert all(lo < hi for lo, hi, _ in buckets[1:])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"a": 0.02, "n": 0, "z": 0, "sum": 0, "k": [], "c": []}, "relative accuracy 0.02"),
        ({"a": 0.01, "n": 1, "z": 0, "sum": 1, "k": [1, 2], "c": [1]}, "2 bucket keys but 1 counts"),
        ({"a": 0.01, "n": 5, "z": 0, "sum": 1, "min": 1, "max": 1, "k": [1], "c": [1]}, "count 5 differs"),
        ([1, 2], "must be an object"),
    ],
)
def test_malformed_json_forms_are_rejected_with_the_reason(bad, message):
    with pytest.raises(ValueError, match=message):
        Sketch.from_dict(bad)
