"""A proxied connection: the client socket, the upstream socket, and the two links between them.

    client ──► Side(client) ══ link upstream (client→server) ══► Side(upstream) ──► server
    client ◄── Side(client) ◄══ link downstream (server→client) ══ Side(upstream) ◄── server

Closing follows Toxiproxy: when end of stream reaches the end of a link, its destination socket is closed
entirely (no half-close); the other link then sees its source end, and so the whole connection closes.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import Protocol, cast

from harness.network.toxiproxy.link import Link
from harness.network.toxiproxy.stream import Direction

_LINGER_RESET = struct.pack("ii", 1, 0)


class LinkFactory(Protocol):
    """Builds a connection's links (`toxic_collection.ToxicCollection`, which imports this module for `wire`)."""

    def start_links(self, conn: Connection) -> list[Link]: ...
    def forget_links(self, links: list[Link]) -> None: ...


class Owner(Protocol):
    """The proxy a connection belongs to (`proxy.Proxy`): declared here because the proxy imports this module."""

    @property
    def connections(self) -> set[Connection]: ...
    @property
    def toxics(self) -> LinkFactory: ...
    def upstream_address(self) -> tuple[str, int]: ...


class Side(asyncio.Protocol):
    """One socket of a connection. `forward` is where its reads go: the peer's write (direct) or a link."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.forward: Callable[[bytes], None] = self._hold
        self._held: list[bytes] = []
        self.out_link: Link | None = None  # the link this socket feeds
        self.in_link: Link | None = None  # the link that writes to this socket
        self.lost = False
        self.writing_paused = False
        self.reading_paused = False
        self._drain: asyncio.Future[None] | None = None

    # asyncio.Protocol ------------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # Go's default; small writes go at once
        # Nothing is read until the links exist (Toxiproxy starts reading when it starts its links).
        self.set_reading_paused(True)
        self.conn.side_made(self)

    def data_received(self, data: bytes) -> None:
        self.forward(data)

    def eof_received(self) -> bool:
        if self.out_link is not None:
            self.out_link.source_ended()
        return True  # keep the socket open for what the other link still writes

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._wake_drain()
        self.conn.side_lost(self)

    def pause_writing(self) -> None:
        self.writing_paused = True
        if self.in_link is not None:
            self.in_link.update_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_drain()
        if self.in_link is not None:
            self.in_link.update_reading()

    # used by links ---------------------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None and not self.lost:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None and not self.lost:
            self.transport.abort()

    def set_reading_paused(self, paused: bool) -> None:
        if paused == self.reading_paused or self.transport is None or self.lost or self.transport.is_closing():
            return
        self.reading_paused = paused
        if paused:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def _hold(self, data: bytes) -> None:
        # uvloop can deliver a read even though connection_made paused reading: keep it until the links start.
        self._held.append(data)

    def release_held(self) -> None:
        """Send what was read before the links started through `forward`, oldest first."""
        held, self._held = self._held, []
        for data in held:
            self.forward(data)

    def set_linger_reset(self) -> None:
        """SO_LINGER 0: closing this socket sends a TCP RST instead of a FIN."""
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)

    async def drained(self) -> None:
        """Wait until the transport's write buffer is under its low-water mark again, or the socket is gone."""
        if not self.writing_paused or self.lost:
            return
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_future()
        await self._drain

    def _wake_drain(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None


class Connection:
    """Accepted client + dialled upstream. Registered with its proxy from accept until both sockets are gone."""

    def __init__(self, proxy: Owner) -> None:
        self.proxy = proxy
        self.client = Side(self)
        self.upstream: Side | None = None
        self.links: list[Link] = []
        self.aborted = False
        self.finished = False
        self._dial: asyncio.Task[None] | None = None

    def side_made(self, side: Side) -> None:
        if side is self.client:
            self.proxy.connections.add(self)
            self._dial = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        upstream = Side(self)
        try:
            host, port = self.proxy.upstream_address()
            await asyncio.get_running_loop().create_connection(lambda: upstream, host, port)
        except (OSError, ValueError):
            self.client.close()  # Toxiproxy closes the client at once when the dial fails
            return
        self.upstream = upstream
        if self.aborted or self.client.lost:
            upstream.abort()
            return
        self.links = self.proxy.toxics.start_links(self)

    def wire(self, direction: Direction) -> tuple[Side, Side]:
        """(source, destination) of the link in `direction`."""
        assert self.upstream is not None
        if direction is Direction.UPSTREAM:
            return self.client, self.upstream
        return self.upstream, self.client

    def side_lost(self, side: Side) -> None:
        if side.out_link is not None:
            side.out_link.source_ended()
        if side.in_link is not None:
            side.in_link.dest_lost()
        if self.client.lost and (self.upstream is None or self.upstream.lost):
            if self.upstream is None and self._dial is not None and not self._dial.done():
                self.aborted = True  # the dial finishes later and closes what it opened
            self._finish()

    def abort(self) -> None:
        """Close both sockets now (the proxy was disabled or deleted)."""
        self.aborted = True
        self.client.abort()
        if self.upstream is not None:
            self.upstream.abort()

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        for link in self.links:
            link.stop()
        self.proxy.toxics.forget_links(self.links)
        self.proxy.connections.discard(self)
