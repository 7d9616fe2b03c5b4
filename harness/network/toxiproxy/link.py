"""One direction of one proxied connection: source socket → chain of toxics → destination socket.

Mirrors Toxiproxy's `link.go`. With toxics, every toxic runs as its own coroutine on a `ToxicStub`, chained
through channels; a writer coroutine drains the last channel into the destination:

    source.data_received ─► head ─► [ ToxicStub ]─► ch ─► [ ToxicStub ]─► tail ─► writer ─► dest.write
     (Chunk(data, t_read))  chan      latency             bandwidth       chan     (awaits drain)

With no toxics the link is direct: the source protocol writes each read straight to the destination transport
(no coroutine, no chunk object, no lock), and the destination's write-buffer limits pause the source.

Toxics change on live links (Toxiproxy semantics): a new toxic is spliced in after the last one; an updated toxic
is interrupted and restarted, re-rolling its toxicity; a removed toxic is interrupted, what was queued for it moves
on, and its predecessor writes to its successor. When the last toxic goes, the writer drains the channel and the
link turns direct again, so bytes are never reordered.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Protocol

from harness.network.toxiproxy.stream import Channel, Chunk, Direction
from harness.network.toxiproxy.toxics import NoopToxic, Toxic, ToxicStub
from harness.network.toxiproxy.toxics.base import READ_BUFFER_BYTES

log = logging.getLogger(__name__)

_NOOP = NoopToxic()
_WAKE = Chunk(b"", 0.0)  # an empty chunk that only makes the writer re-check whether it can go direct


class Endpoint(Protocol):
    """A socket as its links use it: `connection.Side`, declared here so that link does not import its caller."""

    forward: Callable[[bytes], None]
    """Where the socket's reads go; the link points it at itself, at the peer's `write`, or at nothing."""

    @property
    def lost(self) -> bool: ...
    @property
    def writing_paused(self) -> bool: ...
    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def set_reading_paused(self, paused: bool) -> None: ...
    def release_held(self) -> None: ...
    async def drained(self) -> None: ...


class ChainedToxic(Protocol):
    """A toxic of a chain as links use it: `toxic_collection.ToxicWrapper`, declared here for the same reason."""

    @property
    def name(self) -> str: ...
    @property
    def toxic(self) -> Toxic: ...
    @property
    def toxicity(self) -> float: ...
    @property
    def index(self) -> int: ...


class Link:
    """Source → toxics → destination for one connection direction. Lives on the proxy's event loop."""

    def __init__(self, direction: Direction, source: Endpoint, dest: Endpoint) -> None:
        self.direction = direction
        self.source = source
        self.dest = dest
        self.stubs: list[ToxicStub] = []
        self.head: Channel | None = None  # where reads go; None while the link is direct
        self.tail: Channel | None = None  # what the writer drains
        self.over = 0  # channels over their byte cap: while > 0 the source is not read
        self.eof = False  # the source ended
        self.done = False  # end of stream reached the destination
        self.stopped = False
        self._writer: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def start(self, chain: list[ChainedToxic]) -> None:
        if chain:
            self._enter_pipeline()
            for wrapper in chain:
                self.add_toxic(wrapper)
        else:
            self.source.forward = self.dest.write
        self.source.release_held()
        self.update_reading()

    def stop(self) -> None:
        """The connection is gone: cancel every coroutine of this link."""
        self.stopped = True
        for stub in self.stubs:
            if stub.task is not None:
                stub.task.cancel()  # type: ignore[attr-defined]
        if self._writer is not None:
            self._writer.cancel()

    # -- data path -----------------------------------------------------------------------------------------------
    def push(self, data: bytes) -> None:
        """Pipeline entrance (the source's `forward` while the link has toxics)."""
        head = self.head
        assert head is not None
        head.put(Chunk(data, time.monotonic()))

    def source_ended(self) -> None:
        if self.eof:
            return
        self.eof = True
        if self.head is None:
            self.done = True
            self.dest.close()
        else:
            self.head.put(None)

    def dest_lost(self) -> None:
        if self.head is None:
            self.source.forward = _drop

    def channel_over(self, delta: int) -> None:
        self.over += delta
        self.update_reading()

    def update_reading(self) -> None:
        paused = self.over > 0 or (self.head is None and self.dest.writing_paused)
        self.source.set_reading_paused(paused)

    def _enter_pipeline(self) -> None:
        self.tail = Channel(self, READ_BUFFER_BYTES)
        self.head = self.tail
        self.source.forward = self.push
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(self.tail))

    def _go_direct(self) -> None:
        self.head = self.tail = None
        self._writer = None
        self.source.forward = _drop if self.dest.lost else self.dest.write
        self.update_reading()

    async def _write_loop(self, tail: Channel) -> None:
        dest = self.dest
        while True:
            chunk = await tail.get()
            if chunk is None:
                self.done = True
                dest.close()
                return
            if chunk.data and not dest.lost:
                dest.write(chunk.data)
                if dest.writing_paused:
                    await dest.drained()
            if not self.stubs and not len(tail):
                self._go_direct()
                return

    # -- toxics on a live link (the caller holds the toxic collection's lock) -------------------------------------
    def add_toxic(self, wrapper: ChainedToxic) -> None:
        """Append a toxic after the last one; what is already past the old last toxic is not affected."""
        toxic = wrapper.toxic
        if self.done or self.stopped:  # keep stubs aligned with the chain; nothing flows any more
            dead = ToxicStub(Channel(self, toxic.input_buffer_bytes), Channel(self, 0), None)
            dead.closed = True
            self.stubs.append(dead)
            return
        if self.head is None:
            self._enter_pipeline()
        assert self.tail is not None
        stub = ToxicStub(Channel(self, toxic.input_buffer_bytes), self.tail, toxic.new_state())
        if self.stubs:
            self.stubs[-1].output = stub.input
        else:
            self.head = stub.input
        self.stubs.append(stub)
        self._spawn(stub, wrapper)

    async def update_toxic(self, wrapper: ChainedToxic) -> None:
        """Restart the toxic with new settings (and a new toxicity roll); its per-connection state is kept."""
        stub = self.stubs[wrapper.index]
        if await _interrupt(stub) and not self.stopped:
            self._spawn(stub, wrapper)

    async def remove_toxic(self, wrapper: ChainedToxic, index: int) -> None:
        stub = self.stubs[index]
        alive = await _interrupt(stub) and not self.stopped
        if alive:
            wrapper.toxic.cleanup(stub)
        if alive and not stub.closed:
            for item in stub.input.take_all():  # what was queued for the toxic moves on, in order
                stub.output.put(item)
            stub.input.kill()
            if index == 0:
                self.head = stub.output
            else:
                self.stubs[index - 1].output = stub.output
        del self.stubs[index]
        if not self.stubs and self.tail is not None and not self.done:
            self.tail.put(_WAKE)  # let the writer drain and turn the link direct
        self.update_reading()

    def _spawn(self, stub: ToxicStub, wrapper: ChainedToxic) -> None:
        stub.task = asyncio.get_running_loop().create_task(_run(stub, wrapper))


async def _run(stub: ToxicStub, wrapper: ChainedToxic) -> None:
    # Toxicity is rolled once per (re)start on this link, not per chunk.
    toxic = wrapper.toxic if random.random() < wrapper.toxicity else _NOOP
    try:
        await toxic.pipe(stub)
    except asyncio.CancelledError:
        raise
    except Exception:  # a broken toxic must close its connection, not leave it hanging
        log.exception("toxic %s failed; closing its connection", wrapper.name)
        stub.close()


async def _interrupt(stub: ToxicStub) -> bool:
    """Stop the toxic running on `stub` and wait until it has; False if the stub has closed (its link is ending)."""
    task = stub.task
    if isinstance(task, asyncio.Task) and not task.done():
        task.cancel()
        await asyncio.wait({task})
    return not stub.closed


def _drop(data: bytes) -> None:
    """Where reads go once the destination is gone."""
