"""timeout: discards all data in its direction and closes the connection after `timeout` ms without data.

The timer restarts on every chunk (an inactivity timer). `timeout` 0 drops data forever and never closes.
Removing the toxic from a live connection closes that connection.
"""

from __future__ import annotations

import asyncio
import dataclasses

from harness.network.toxiproxy.toxics.base import Toxic, ToxicStub, non_negative


@dataclasses.dataclass
class TimeoutToxic(Toxic):
    timeout: int = 0
    """Milliseconds of silence before the connection is closed; 0 = never close."""

    def validate(self) -> str | None:
        return non_negative(self, "timeout", unit="a number of milliseconds")

    async def pipe(self, stub: ToxicStub) -> None:
        timeout_s = self.timeout / 1000 if self.timeout > 0 else None
        while True:
            try:
                async with asyncio.timeout(timeout_s):
                    chunk = await stub.read()
            except TimeoutError:
                stub.close()
                return
            if chunk is None:
                stub.close()
                return
            # The chunk is dropped on the floor.

    def cleanup(self, stub: ToxicStub) -> None:
        stub.close()
