"""Upload sizes for FileTransferUser: a weighted distribution, written `10KB:70,100KB:20,1MB:8,10MB:2`.

Each entry is a size and a weight; a draw picks an entry by weight, then a size uniformly within ±50 % of it
(clamped to the allowed range), so uploads are not all identical yet stay near the named sizes.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from harness.errors import ConfigError

DEFAULT_FILE_SIZES = "10KB:70,100KB:20,1MB:8,10MB:2"
"""Weighted toward small files, as chat attachments are (photos and documents; a few large videos)."""
MIN_BYTES = 1_000
MAX_BYTES = 10_000_000
"""Largest upload: the app's attachment limit (and the reference stack's tested maximum), 10 MB."""
SPREAD = 0.5

_UNITS = {"": 1, "B": 1, "KB": 1_000, "MB": 1_000_000}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(B|KB|MB)?$", re.IGNORECASE)


@dataclass(frozen=True)
class SizeDistribution:
    sizes_bytes: tuple[int, ...]
    weights: tuple[int, ...]

    def draw(self, rng: random.Random) -> int:
        size = rng.choices(self.sizes_bytes, self.weights)[0]
        return max(MIN_BYTES, min(MAX_BYTES, round(size * rng.uniform(1 - SPREAD, 1 + SPREAD))))


def parse_size(text: str, where: str) -> int:
    match = _SIZE.match(text.strip())
    if not match:
        raise ConfigError(f"{where}: {text.strip()!r} is not a size (a number with B, KB or MB, e.g. 100KB)")
    size = round(float(match.group(1)) * _UNITS[(match.group(2) or "").upper()])
    if not MIN_BYTES <= size <= MAX_BYTES:
        raise ConfigError(f"{where}: {text.strip()!r} is outside 1KB..10MB (e.g. 100KB)")
    return size


def parse_sizes(text: str, where: str) -> SizeDistribution:
    """`SIZE:WEIGHT,...` → distribution; a missing weight is 1."""
    sizes: list[int] = []
    weights: list[int] = []
    for part in text.split(","):
        size_text, _, weight_text = part.strip().partition(":")
        sizes.append(parse_size(size_text, where))
        try:
            weight = int(weight_text) if weight_text.strip() else 1
        except ValueError:
            weight = -1
        if weight < 0:
            raise ConfigError(f"{where}: weight {weight_text.strip()!r} is not a whole number >= 0 (e.g. 10KB:70)")
        weights.append(weight)
    if not any(weights):
        raise ConfigError(f"{where}: every weight is 0 (e.g. {DEFAULT_FILE_SIZES})")
    return SizeDistribution(tuple(sizes), tuple(weights))
