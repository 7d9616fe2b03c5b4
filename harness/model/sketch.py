"""Mergeable latency sketch: a DDSketch with 1 % relative accuracy kept as a dict of log-buckets.

Every sample lands in bucket `k = ceil(log(value_ms) / log(gamma))`, `gamma = (1 + a) / (1 - a)`. A bucket's
representative value `2 * gamma**k / (gamma + 1)` is within `a` (1 %) of every value in it, so any quantile read
from the buckets is within 1 % of the true sample at that rank. Buckets are plain counts: merging two sketches adds
counts key by key, so samples split across workers and merged give exactly the buckets one sketch would have.

Own implementation rather than the `ddsketch` package: same algorithm and bound, about twice as fast per `add`
(bench/bench_sketch.py), and a compact JSON form for Locust's worker reports and result.json.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

RELATIVE_ACCURACY = 0.01
"""Relative error bound of every quantile (0.01 = 1 %). Fixed module-wide so any two sketches can merge."""

MIN_INDEXABLE_MS = 1e-6
"""Values at or below this (1 ns) are counted in the zero bucket: log-buckets cannot hold 0 or negatives."""

_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_INV_LOG_GAMMA = 1.0 / math.log(_GAMMA)
_log = math.log
_ceil = math.ceil


MAX_BUCKET_KEY = 30_000
"""Largest bucket key a stored sketch may hold (about 1e260 ms); beyond ~35,000 `bucket_value_ms` overflows."""


def _whole(v: Any, what: str, low: int | None = None) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or (low is not None and v < low):
        bound = f" of at least {low}" if low is not None else ""
        raise ValueError(f"sketch {what} must be a whole number{bound}, got {v!r:.40}")
    return v


def _finite(v: Any, what: str) -> float:
    try:
        value = float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan
    except OverflowError:  # an integer beyond a float's range
        value = math.inf
    if not math.isfinite(value):
        raise ValueError(f"sketch {what} must be a finite number, got {v!r:.40}")
    return value


def bucket_value_ms(key: int) -> float:
    """Representative value of bucket `key`: within RELATIVE_ACCURACY of anything stored in it."""
    return 2.0 * _GAMMA**key / (_GAMMA + 1.0)


def bucket_bounds_ms(key: int) -> tuple[float, float]:
    """The bucket's (lower, upper] value range."""
    return _GAMMA ** (key - 1), _GAMMA**key


class Sketch:
    """Latency samples in milliseconds: counts per log-bucket plus exact count, sum, min and max."""

    __slots__ = ("bins", "count", "max_ms", "min_ms", "sum_ms", "zeros")

    def __init__(self) -> None:
        self.bins: dict[int, int] = {}
        self.zeros = 0
        self.count = 0
        self.sum_ms = 0.0
        self.min_ms = math.inf
        self.max_ms = -math.inf

    def add(self, value_ms: float) -> None:
        # Hot path (once per request): locals only, no method calls beyond log/ceil.
        if value_ms > MIN_INDEXABLE_MS:
            k = _ceil(_log(value_ms) * _INV_LOG_GAMMA)
            bins = self.bins
            bins[k] = bins.get(k, 0) + 1
        else:
            self.zeros += 1
        self.count += 1
        self.sum_ms += value_ms
        if value_ms < self.min_ms:
            self.min_ms = value_ms
        if value_ms > self.max_ms:
            self.max_ms = value_ms

    def merge(self, other: Sketch) -> None:
        """Adds `other`'s samples into this sketch (exact: bucket counts add)."""
        bins = self.bins
        for k, c in other.bins.items():
            bins[k] = bins.get(k, 0) + c
        self.zeros += other.zeros
        self.count += other.count
        self.sum_ms += other.sum_ms
        self.min_ms = min(self.min_ms, other.min_ms)
        self.max_ms = max(self.max_ms, other.max_ms)

    def copy(self) -> Sketch:
        new = Sketch()
        new.merge(self)
        return new

    def quantile(self, q: float) -> float | None:
        """Value at quantile `q` (0..1), within RELATIVE_ACCURACY of the true sample at that rank; None when empty."""
        return self.quantiles([q])[0]

    def quantiles(self, qs: list[float]) -> list[float | None]:
        """Several quantiles in one pass over the sorted buckets."""
        if self.count == 0:
            return [None for _ in qs]
        ranks = [q * (self.count - 1) for q in qs]
        out: list[float | None] = [None for _ in qs]
        keys = sorted(self.bins)
        for i, q in enumerate(qs):
            if q <= 0:
                out[i] = self.min_ms
            elif q >= 1:
                out[i] = self.max_ms
        todo = [i for i, v in enumerate(out) if v is None]
        cum = self.zeros
        for i in list(todo):
            if ranks[i] < cum:
                out[i] = max(0.0, self.min_ms)
                todo.remove(i)
        for k in keys:
            if not todo:
                break
            cum += self.bins[k]
            for i in list(todo):
                if ranks[i] < cum:
                    # Clamp to the exact extremes: keeps p100-ish values honest and never widens the bound.
                    out[i] = min(max(bucket_value_ms(k), self.min_ms), self.max_ms)
                    todo.remove(i)
        return out

    @property
    def mean_ms(self) -> float | None:
        return self.sum_ms / self.count if self.count else None

    def histogram(self) -> Iterator[tuple[float, float, int]]:
        """(lower_ms, upper_ms, count) per non-empty bucket, ascending; the zero bucket first as (0, 0, n)."""
        if self.zeros:
            yield 0.0, 0.0, self.zeros
        for k in sorted(self.bins):
            lo, hi = bucket_bounds_ms(k)
            yield lo, hi, self.bins[k]

    def to_dict(self) -> dict[str, Any]:
        """Compact JSON-able form: bucket keys delta-encoded (`k`), counts alongside (`c`); docs/result-schema.md."""
        keys = sorted(self.bins)
        deltas = [b - a for a, b in zip([0, *keys], keys, strict=False)]
        d: dict[str, Any] = {"a": RELATIVE_ACCURACY, "n": self.count, "z": self.zeros, "sum": self.sum_ms}
        if self.count:
            d["min"] = self.min_ms
            d["max"] = self.max_ms
        d["k"] = deltas
        d["c"] = [self.bins[k] for k in keys]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sketch:
        """Inverse of `to_dict`; raises ValueError on a malformed or incompatible sketch (result.json is read from
        anywhere: every field is checked, so a bad file is refused here rather than failing in a quantile)."""
        if not isinstance(d, dict):
            raise ValueError(f"sketch must be an object with keys a, n, z, sum, k, c; got {type(d).__name__}")
        if d.get("a") != RELATIVE_ACCURACY:
            raise ValueError(f"sketch relative accuracy {d.get('a')!r} differs from this harness's {RELATIVE_ACCURACY}")
        deltas, counts = d.get("k", []), d.get("c", [])
        if not isinstance(deltas, list) or not isinstance(counts, list):
            raise ValueError("sketch k and c must be lists of whole numbers")
        if len(deltas) != len(counts):
            raise ValueError(f"sketch has {len(deltas)} bucket keys but {len(counts)} counts")
        s = cls()
        key = 0
        for delta, c in zip(deltas, counts, strict=True):
            key += _whole(delta, "bucket key delta")
            if abs(key) > MAX_BUCKET_KEY:
                raise ValueError(f"sketch bucket key {key} is out of range (-{MAX_BUCKET_KEY} to {MAX_BUCKET_KEY})")
            s.bins[key] = _whole(c, "bucket count", low=0)
        s.zeros = _whole(d.get("z", 0), "zero count (z)", low=0)
        s.count = _whole(d.get("n", 0), "count (n)", low=0)
        s.sum_ms = _finite(d.get("sum", 0.0), "sum")
        if s.count != s.zeros + sum(s.bins.values()):
            raise ValueError(f"sketch count {s.count} differs from the sum of its buckets")
        if s.count:
            s.min_ms = _finite(d.get("min"), "min")
            s.max_ms = _finite(d.get("max"), "max")
            if s.min_ms > s.max_ms:
                raise ValueError(f"sketch min {s.min_ms} is above its max {s.max_ms}")
        return s

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sketch):
            return NotImplemented
        return (
            self.bins == other.bins
            and self.zeros == other.zeros
            and self.count == other.count
            and (self.count == 0 or (self.min_ms == other.min_ms and self.max_ms == other.max_ms))
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Sketch(count={self.count}, buckets={len(self.bins)}, p50={self.quantile(0.5)}, p99={self.quantile(0.99)})"
        )


def merged(sketches: list[Sketch]) -> Sketch:
    """A new sketch holding every sample of `sketches`."""
    out = Sketch()
    for s in sketches:
        out.merge(s)
    return out
