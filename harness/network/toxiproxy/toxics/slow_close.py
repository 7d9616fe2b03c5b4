"""slow_close: data passes unchanged; when the source closes, the close is passed on `delay` ms later."""

from __future__ import annotations

import asyncio
import dataclasses

from harness.network.toxiproxy.toxics.base import Toxic, ToxicStub, non_negative


@dataclasses.dataclass
class SlowCloseToxic(Toxic):
    delay: int = 0
    """Milliseconds between the source's end of stream and closing the destination."""

    def validate(self) -> str | None:
        return non_negative(self, "delay", unit="a number of milliseconds")

    async def pipe(self, stub: ToxicStub) -> None:
        while True:
            chunk = await stub.read()
            if chunk is None:
                # An interrupt here just stops: the input channel replays end of stream to whatever runs next.
                await asyncio.sleep(self.delay / 1000)
                stub.close()
                return
            stub.write(chunk)
