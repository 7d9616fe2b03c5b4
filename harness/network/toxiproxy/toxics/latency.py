"""latency: delays each chunk by `latency` ± `jitter` ms, measured from when the chunk was read.

Chunks are handled one at a time, so they are never reordered; the deep input buffer keeps latency from capping
throughput (Toxiproxy buffers 1024 chunks).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time

from harness.network.toxiproxy.toxics.base import Toxic, ToxicStub, non_negative


@dataclasses.dataclass
class LatencyToxic(Toxic):
    latency: int = 0
    """Milliseconds added to each chunk."""
    jitter: int = 0
    """Milliseconds; each chunk's delay is latency + U[-jitter, +jitter)."""

    input_buffer_bytes = 1024 * 32 * 1024

    def validate(self) -> str | None:
        return non_negative(self, "latency", "jitter", unit="a number of milliseconds")

    def delay_s(self) -> float:
        delay_ms = self.latency
        if self.jitter > 0:
            delay_ms += random.randrange(2 * self.jitter) - self.jitter
        return delay_ms / 1000

    async def pipe(self, stub: ToxicStub) -> None:
        while True:
            chunk = await stub.read()
            if chunk is None:
                stub.close()
                return
            sleep_s = self.delay_s() - (time.monotonic() - chunk.ts)
            if sleep_s > 0:
                try:
                    await asyncio.sleep(sleep_s)
                except asyncio.CancelledError:
                    stub.write(chunk)  # interrupted: pass it on without the delay, as Toxiproxy does
                    raise
            chunk.ts += sleep_s  # a later latency toxic measures from when this one released the chunk
            stub.write(chunk)
