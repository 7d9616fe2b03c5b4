"""One proxy: a listener that accepts clients, dials the upstream for each, and links them through the proxy's
toxics (Toxiproxy's `proxy.go`).

    client <-> listen <-> [links + toxics] <-> upstream
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket

from harness.network.toxiproxy.connection import Connection
from harness.network.toxiproxy.errors import ApiError, listen_failed
from harness.network.toxiproxy.toxic_collection import ToxicCollection

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 1024
"""Pending-connection queue of each proxy listener."""


def split_host_port(address: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` → (host, port). Raises ValueError worded like Go's net package."""
    host, sep, port_text = address.rpartition(":")
    if not sep:
        raise ValueError(f"address {address}: missing port in address")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"address {address}: too many colons in address")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"address {address}: invalid port {port_text!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"address {address}: invalid port {port}")
    return host, port


_HOST_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63})*\.?")


def check_listen(listen: str) -> None:
    """Raise ValueError unless `listen` is empty or `host:port` with an IP address or a host name as its host:
    a malformed address is the client's mistake (400), found before anything is stopped or bound."""
    if not listen:
        return
    host, _ = split_host_port(listen)
    if not host or (len(host) <= 253 and _HOST_NAME.fullmatch(host)):
        return
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"address {listen[:80]}: {host[:64]!r} is neither an IP address nor a host name") from None


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def resolve_listen(listen: str, default_host: str) -> tuple[int, tuple[object, ...], str]:
    """(family, sockaddr, "ip:port") of a listen address, as Go's net.ResolveTCPAddr: a host name becomes its
    address (IPv4 first), an empty host `default_host` (Go would listen on every interface; we stay on loopback).
    Raises ApiError (500, as Toxiproxy) when the name does not resolve."""
    listen = listen or f"{default_host}:0"
    try:
        host, port = split_host_port(listen)
    except ValueError as exc:
        raise listen_failed(f"listen tcp: {exc}") from None
    host = host or default_host
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:  # ValueError: a name the resolver cannot encode (checked earlier)
        reason = getattr(exc, "strerror", None) or exc
        raise listen_failed(f"listen tcp {listen}: lookup {host}: {reason}") from None
    family, _, _, _, sockaddr = sorted(infos, key=lambda info: info[0] != socket.AF_INET)[0]
    return family, sockaddr, join_host_port(str(sockaddr[0]), int(sockaddr[1]))


class Proxy:
    """`listen` is the configured address until the proxy starts, then the bound one (port 0 becomes the real
    port, and re-enabling listens there again)."""

    def __init__(self, name: str, listen: str, upstream: str, host_for_listeners: str) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics = ToxicCollection()
        self.connections: set[Connection] = set()
        self._host_for_listeners = host_for_listeners
        self._server: asyncio.Server | None = None
        self._lock = asyncio.Lock()

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [w.to_json() for w in self.toxics.toxics()],
        }

    def upstream_address(self) -> tuple[str, int]:
        return split_host_port(self.upstream)

    async def start(self) -> bool:
        """Listen. False if already listening. Raises ApiError (500) when the address cannot be bound."""
        async with self._lock:
            return await self._start()

    async def stop(self) -> None:
        """Close the listener and every live connection."""
        async with self._lock:
            await self._stop()

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        """Toxiproxy's Update: a new address restarts the proxy (closing its connections). If the new address
        cannot be bound, the proxy goes back to its old address and state (Toxiproxy would leave it stopped on
        the new one); only the connections closed by the restart stay closed."""
        async with self._lock:
            changed = await self.differs(listen, upstream)  # a name that does not resolve changes nothing
            before = (self.listen, self.upstream, self.enabled)
            try:
                if changed:
                    await self._stop()
                    self.listen, self.upstream = listen, upstream
                if enabled != self.enabled:
                    if enabled:
                        await self._start()
                    else:
                        await self._stop()
            except ApiError:
                await self._restore(*before)
                raise

    async def differs(self, listen: str, upstream: str) -> bool:
        """Toxiproxy 2.12's Differs: the new listen address is resolved before it is compared, so `localhost:8080`
        is the same as the bound `127.0.0.1:8080` and an unchanged proxy keeps its listener and connections
        (Toxiproxy #631). Port 0 never equals a bound port: such a proxy is restarted, as in Toxiproxy."""
        _, _, resolved = await resolve_listen(listen, self._host_for_listeners)
        return resolved != self.listen or upstream != self.upstream

    async def restore(self, listen: str, upstream: str, enabled: bool) -> None:
        """Put back an address and state saved earlier (a failed populate undoing its replacements)."""
        async with self._lock:
            await self._restore(listen, upstream, enabled)

    async def _restore(self, listen: str, upstream: str, enabled: bool) -> None:
        await self._stop()
        self.listen, self.upstream = listen, upstream
        if enabled:
            try:
                await self._start()
            except ApiError as err:  # its old port was taken meanwhile: it stays defined, disabled
                log.warning("proxy %s could not listen again on %s: %s", self.name, listen, err.message)

    async def _start(self) -> bool:
        if self.enabled:
            return False
        sock = await self._bind()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self).client, sock=sock, backlog=LISTEN_BACKLOG)
        host, port = sock.getsockname()[:2]
        self.listen = join_host_port(host, port)
        self.enabled = True
        return True

    async def _bind(self) -> socket.socket:
        family, sockaddr, address = await resolve_listen(self.listen, self._host_for_listeners)
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go does on Linux
            sock.bind(sockaddr)
            sock.listen(LISTEN_BACKLOG)
        except OSError as exc:  # Go names the resolved address: "listen tcp 127.0.0.1:8080: bind: ..."
            sock.close()
            raise listen_failed(f"listen tcp {address}: bind: {(exc.strerror or str(exc)).lower()}") from None
        sock.setblocking(False)
        return sock

    async def _stop(self) -> None:
        if not self.enabled:
            return
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self.connections):
            conn.abort()
        if server is not None:
            await server.wait_closed()
