"""slicer: splits each chunk into pieces of about `average_size` ± `size_variation` bytes, `delay` µs apart.

Pieces come from recursive halving with the cut moved by up to ± size_variation, so there is no tendency towards
a small piece at the start or end (Toxiproxy's algorithm).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random

from harness.network.toxiproxy.stream import Chunk
from harness.network.toxiproxy.toxics.base import Toxic, ToxicStub, non_negative


@dataclasses.dataclass
class SlicerToxic(Toxic):
    average_size: int = 0
    """Bytes per piece on average; must be > 0."""
    size_variation: int = 0
    """± bytes of variation; must be smaller than average_size."""
    delay: int = 0
    """Microseconds (not ms) to wait after each piece."""

    def validate(self) -> str | None:
        problem = non_negative(self, "size_variation", "delay", unit="a non-negative integer")
        if problem:
            return problem
        if self.average_size <= 0:
            return f"attributes.average_size: {self.average_size} must be a number of bytes > 0"
        if self.size_variation >= self.average_size:
            return (
                f"attributes.size_variation: {self.size_variation} must be smaller than average_size "
                f"({self.average_size})"
            )
        return None

    def cuts(self, start: int, end: int) -> list[int]:
        """Piece boundaries as [start0, end0, start1, end1, …]."""
        if (end - start) - self.average_size <= self.size_variation:
            return [start, end]
        variation = self.size_variation
        mid = start + (end - start) // 2 + (random.randrange(2 * variation) - variation if variation else 0)
        return self.cuts(start, mid) + self.cuts(mid, end)

    async def pipe(self, stub: ToxicStub) -> None:
        delay_s = self.delay / 1_000_000
        while True:
            chunk = await stub.read()
            if chunk is None:
                stub.close()
                return
            data, ts = chunk.data, chunk.ts
            bounds = self.cuts(0, len(data))
            for i in range(1, len(bounds), 2):
                stub.write(Chunk(data[bounds[i - 1] : bounds[i]], ts))
                try:
                    await asyncio.sleep(delay_s)
                except asyncio.CancelledError:
                    if bounds[i] < len(data):
                        stub.write(Chunk(data[bounds[i] :], ts))
                    raise
