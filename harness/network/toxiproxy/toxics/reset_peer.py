"""reset_peer: on the first chunk (or end of stream) in its direction, waits `timeout` ms, then closes the link.

A link that starts with this toxic sets SO_LINGER=0 on both sockets, so that close is a TCP RST ("connection
reset by peer"). Added to a connection that is already open, it closes without RST, as in Toxiproxy. The
triggering chunk is dropped; a connection that sends nothing in this direction is never reset.
"""

from __future__ import annotations

import asyncio
import dataclasses

from harness.network.toxiproxy.toxics.base import Toxic, ToxicStub, non_negative


@dataclasses.dataclass
class ResetPeerToxic(Toxic):
    timeout: int = 0
    """Milliseconds between the first chunk and the reset."""

    resets_peer = True

    def validate(self) -> str | None:
        return non_negative(self, "timeout", unit="a number of milliseconds")

    async def pipe(self, stub: ToxicStub) -> None:
        await stub.read()
        try:
            await asyncio.sleep(self.timeout / 1000)
        finally:
            # Toxiproxy does not listen for interrupts during this wait, so once triggered the reset always
            # happens; an interrupt only brings it forward.
            stub.close()
