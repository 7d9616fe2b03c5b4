"""What every toxic is, and the stub it runs on (Toxiproxy's `toxics/toxic.go`).

A toxic holds only its settings (its wire `attributes`); the per-connection part lives on a `ToxicStub`, so one
toxic serves every connection of its proxy:

                 Toxic (settings, `pipe`)
                   v
    input Channel > ToxicStub > output Channel

`pipe(stub)` runs once per link direction, reading chunks with `await stub.read()` and passing them on with
`stub.write(chunk)`, until it closes the stub (`stub.close()` sends end of stream onward, which closes the
connection) or is interrupted. An interrupt (the toxic is updated or removed on a live link) arrives as
`asyncio.CancelledError` at an `await`: a toxic holding data forwards it before re-raising, so nothing is dropped.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from harness.network.toxiproxy.stream import Channel, Chunk, Item
from harness.network.toxiproxy.wire import int64, json_type

READ_BUFFER_BYTES = 64 * 1024
"""Default byte cap of a toxic's input channel before the source socket is paused (about Toxiproxy's unbuffered
channel plus the 32 KiB read in flight)."""


class ToxicStub:
    """One toxic on one link: the channels it reads and writes, and its per-connection state."""

    __slots__ = ("closed", "input", "output", "state", "task")

    def __init__(self, input: Channel, output: Channel, state: object | None) -> None:
        self.input = input
        self.output = output
        self.state = state
        self.closed = False
        self.task: object | None = None  # the asyncio.Task running the toxic; owned by the link

    async def read(self) -> Item:
        return await self.input.get()

    def write(self, chunk: Chunk) -> None:
        self.output.put(chunk)

    def close(self) -> None:
        """End the stream here: drop what is still queued for this toxic and send end of stream onward."""
        if self.closed:
            return
        self.closed = True
        self.input.kill()
        self.output.put(None)


@dataclasses.dataclass
class Toxic:
    """Base of every toxic. Subclasses are dataclasses whose int fields are the wire attributes, in wire order."""

    input_buffer_bytes: ClassVar[int] = READ_BUFFER_BYTES
    """Byte cap of this toxic's input channel (latency keeps a deep buffer so that it does not cap throughput)."""

    resets_peer: ClassVar[bool] = False
    """True for reset_peer: links starting with it set SO_LINGER=0 on both sockets, so a close is a TCP RST."""

    async def pipe(self, stub: ToxicStub) -> None:
        raise NotImplementedError

    def validate(self) -> str | None:
        """A message naming the bad attribute and the valid form, or None when the settings are usable."""
        return None

    def new_state(self) -> object | None:
        """Per-connection state kept on the stub across updates of this toxic (limit_data counts bytes)."""
        return None

    def cleanup(self, stub: ToxicStub) -> None:
        """Called when the toxic is removed from a live link (timeout closes the connection)."""

    def attributes(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @classmethod
    def from_attributes(cls, attributes: object, base: Toxic | None = None) -> Toxic:
        """Build from wire attributes; missing ones keep `base`'s values (or 0). Raises ValueError naming the
        bad attribute. Unknown attributes are ignored, as Toxiproxy's JSON decoding does."""
        values = base.attributes() if base is not None else {}
        if attributes is not None:
            if not isinstance(attributes, dict):
                raise ValueError(f"attributes must be a JSON object, got {json_type(attributes)}")
            for field in dataclasses.fields(cls):
                if field.name not in attributes or attributes[field.name] is None:
                    continue
                value = attributes[field.name]
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"attributes.{field.name}: {json_type(value)} is not an integer (e.g. 100)")
                values[field.name] = int64(f"attributes.{field.name}", value)
        toxic = cls(**values)
        problem = toxic.validate()
        if problem is not None:
            raise ValueError(problem)
        return toxic


def non_negative(toxic: Toxic, *names: str, unit: str) -> str | None:
    """Shared check: each named attribute must be >= 0."""
    for name in names:
        value = getattr(toxic, name)
        if value < 0:
            return f"attributes.{name}: {value} is negative; use {unit} >= 0"
    return None
