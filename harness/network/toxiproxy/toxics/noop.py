"""noop: passes every chunk through unchanged. Also what runs when a toxic's toxicity roll says no."""

from __future__ import annotations

import dataclasses

from harness.network.toxiproxy.toxics.base import Toxic, ToxicStub


@dataclasses.dataclass
class NoopToxic(Toxic):
    async def pipe(self, stub: ToxicStub) -> None:
        while True:
            chunk = await stub.read()
            if chunk is None:
                stub.close()
                return
            stub.write(chunk)
