"""limit_data: forwards at most `bytes` bytes in its direction per connection, then closes the connection.

The chunk that crosses the limit is truncated. The count lives on the connection, so updating the toxic keeps it.
"""

from __future__ import annotations

import dataclasses

from harness.network.toxiproxy.stream import Chunk
from harness.network.toxiproxy.toxics.base import Toxic, ToxicStub, non_negative


class _Sent:
    __slots__ = ("bytes",)

    def __init__(self) -> None:
        self.bytes = 0


@dataclasses.dataclass
class LimitDataToxic(Toxic):
    bytes: int = 0
    """Bytes allowed through before the connection is closed."""

    def validate(self) -> str | None:
        return non_negative(self, "bytes", unit="a number of bytes")

    def new_state(self) -> object:
        return _Sent()

    async def pipe(self, stub: ToxicStub) -> None:
        sent = stub.state
        assert isinstance(sent, _Sent)
        remaining = self.bytes - sent.bytes
        while True:
            chunk = await stub.read()
            if chunk is None:
                stub.close()
                return
            remaining = max(remaining, 0)
            if remaining < len(chunk.data):
                chunk = Chunk(chunk.data[:remaining], chunk.ts)
            if chunk.data:
                stub.write(chunk)
                sent.bytes += len(chunk.data)
            remaining = self.bytes - sent.bytes
            if remaining <= 0:
                stub.close()
                return
