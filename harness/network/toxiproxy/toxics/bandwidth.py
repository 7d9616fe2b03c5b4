"""bandwidth: limits a direction to `rate` KB/s (1 KB = 1000 bytes), sending big chunks in 100 ms pieces.

Each chunk adds len·1 ms/rate to a sleep budget; the measured oversleep is paid back on the next chunk. As in
Toxiproxy, rate 0 is not "unlimited": data stalls (Toxiproxy emits empty pieces every 100 ms forever).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from harness.network.toxiproxy.stream import Chunk
from harness.network.toxiproxy.toxics.base import Toxic, ToxicStub, non_negative

PIECE_INTERVAL_S = 0.1
"""A chunk bigger than rate·100 bytes leaves in rate·100-byte pieces, one per interval."""


@dataclasses.dataclass
class BandwidthToxic(Toxic):
    rate: int = 0
    """KB/s (1 KB = 1000 bytes)."""

    def validate(self) -> str | None:
        return non_negative(self, "rate", unit="a rate in KB/s")

    async def pipe(self, stub: ToxicStub) -> None:
        rate = self.rate
        piece = rate * 100
        sleep_s = 0.0
        while True:
            chunk = await stub.read()
            if chunk is None:
                stub.close()
                return
            data, ts = chunk.data, chunk.ts
            if rate <= 0:
                try:  # stalls until interrupted
                    await asyncio.get_running_loop().create_future()
                finally:
                    stub.write(chunk)
            sleep_s += len(data) / rate / 1000
            offset = 0
            while len(data) - offset > piece:
                try:
                    await asyncio.sleep(PIECE_INTERVAL_S)
                except asyncio.CancelledError:
                    stub.write(Chunk(data[offset:], ts))
                    raise
                stub.write(Chunk(data[offset : offset + piece], ts))
                offset += piece
                sleep_s -= PIECE_INTERVAL_S
            rest = Chunk(data[offset:], ts) if offset else chunk
            start = time.monotonic()
            try:
                await asyncio.sleep(max(sleep_s, 0.0))
            except asyncio.CancelledError:
                stub.write(rest)
                raise
            sleep_s -= time.monotonic() - start  # timers overshoot: pay the error back on the next chunk
            stub.write(rest)
