"""What flows between toxics: chunks of bytes with their arrival time, through one-reader channels.

Mirrors Toxiproxy's `stream` package. A `Channel` is unbounded so that writes never block (a toxic can forward
the data it holds from inside a cancellation handler); back-pressure is applied where data enters the link: a
channel holding more than `cap_bytes` tells its link, which pauses reading the source socket until it drains.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from typing import Protocol


class Direction(enum.IntEnum):
    """`upstream` is client → server, `downstream` server → client (Toxiproxy's order: upstream first)."""

    UPSTREAM = 0
    DOWNSTREAM = 1

    @property
    def wire(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Direction | None:
        try:
            return cls[value.upper()]
        except KeyError:
            return None


class Chunk:
    """One socket read. `ts` is when it was read (`time.monotonic()` seconds); latency is measured from it."""

    __slots__ = ("data", "ts")

    def __init__(self, data: bytes, ts: float) -> None:
        self.data = data
        self.ts = ts


Item = Chunk | None
"""What a channel carries: a chunk, or None for end of stream (the source closed or a toxic closed the link)."""


class FlowControl(Protocol):
    """The link that owns a channel: told when the channel goes over or back under its byte cap."""

    def channel_over(self, delta: int) -> None: ...


class Channel:
    """FIFO of chunks with exactly one reader. `put` never blocks; `get` waits until an item is there."""

    __slots__ = ("_flow", "_items", "_waiter", "cap_bytes", "dead", "eof_taken", "nbytes", "over")

    def __init__(self, flow: FlowControl, cap_bytes: int) -> None:
        self._items: deque[Item] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._flow = flow
        self.cap_bytes = cap_bytes
        self.nbytes = 0
        self.over = False
        self.dead = False
        self.eof_taken = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Item) -> None:
        if self.dead:  # its reader closed: the data has nowhere to go (Toxiproxy would block forever here)
            return
        self._items.append(item)
        if item is not None:
            self.nbytes += len(item.data)
            if not self.over and self.nbytes > self.cap_bytes:
                self.over = True
                self._flow.channel_over(1)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Item:
        """The next item. Like a closed Go channel, once end of stream was taken every later `get` returns None,
        so a toxic restarted after it consumed the end of stream sees it again."""
        # The item is popped only after the wait, so cancelling a reader that waits here never loses data.
        while not self._items:
            if self.eof_taken:
                return None
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
        if item is None:
            self.eof_taken = True
        else:
            self._taken(len(item.data))
        return item

    def take_all(self) -> list[Item]:
        """Empty the channel and return what it held, oldest first (ending with None once end of stream came)."""
        items = list(self._items)
        self._items.clear()
        self._taken(self.nbytes)
        if self.eof_taken:
            items.append(None)
        return items

    def kill(self) -> None:
        """Its reader is gone: drop what is queued and discard whatever is put from now on."""
        self.take_all()
        self.dead = True

    def _taken(self, nbytes: int) -> None:
        self.nbytes -= nbytes
        if self.over and self.nbytes <= self.cap_bytes:
            self.over = False
            self._flow.channel_over(-1)
