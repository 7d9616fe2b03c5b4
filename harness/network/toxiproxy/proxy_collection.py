"""Every proxy of the server, by name (Toxiproxy's `proxy_collection.go`)."""

from __future__ import annotations

import asyncio

from harness.network.toxiproxy.errors import (
    ERR_BAD_REQUEST_BODY,
    ERR_MISSING_FIELD,
    ERR_PROXY_ALREADY_EXISTS,
    ERR_PROXY_NOT_FOUND,
    ApiError,
)
from harness.network.toxiproxy.proxy import Proxy
from harness.network.toxiproxy.wire import field


class ProxyCollection:
    def __init__(self, host_for_listeners: str) -> None:
        self.host_for_listeners = host_for_listeners
        self.proxies: dict[str, Proxy] = {}
        self._lock = asyncio.Lock()

    def new_proxy(self, name: str, listen: str, upstream: str) -> Proxy:
        return Proxy(name, listen, upstream, self.host_for_listeners)

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ERR_PROXY_NOT_FOUND
        return proxy

    async def add(self, proxy: Proxy, start: bool) -> None:
        """Add a new proxy (409 if the name is taken), listening first if `start`; a failed listen adds nothing."""
        async with self._lock:
            if proxy.name in self.proxies:
                raise ERR_PROXY_ALREADY_EXISTS
            if start:
                await proxy.start()
            self.proxies[proxy.name] = proxy

    async def remove(self, name: str) -> None:
        async with self._lock:
            proxy = self.get(name)
            await proxy.stop()
            del self.proxies[name]

    async def populate(self, body: object) -> tuple[list[Proxy], ApiError | None]:
        """POST /populate: check every entry first, then add or replace in order, stopping at the first failure.
        Returns the proxies handled so far and the error, if any."""
        try:
            entries = _parse_populate(body)
        except ApiError as err:
            return [], err
        done: list[Proxy] = []
        async with self._lock:
            for name, listen, upstream, enabled in entries:
                try:
                    done.append(await self._add_or_replace(self.new_proxy(name, listen, upstream), enabled))
                except ApiError as err:
                    return done, err
        return done, None

    async def _add_or_replace(self, proxy: Proxy, start: bool) -> Proxy:
        existing = self.proxies.get(proxy.name)
        if existing is not None:
            if existing.listen == proxy.listen and existing.upstream == proxy.upstream:
                return existing  # unchanged: keep it, its toxics and its connections
            await existing.stop()
        if start:
            await proxy.start()
        self.proxies[proxy.name] = proxy
        return proxy

    async def reset(self) -> None:
        """POST /reset: re-enable every proxy and remove every toxic."""
        for proxy in list(self.proxies.values()):
            await proxy.start()
            await proxy.toxics.reset()

    async def close_all(self) -> None:
        """Stop every proxy (server shutdown); the proxies stay defined."""
        for proxy in list(self.proxies.values()):
            await proxy.stop()


def _parse_populate(body: object) -> list[tuple[str, str, str, bool]]:
    if not isinstance(body, list):
        raise ERR_BAD_REQUEST_BODY.joined(f"expected a JSON array of proxies, got {body!r}")
    entries = []
    for position, item in enumerate(body, start=1):
        if not isinstance(item, dict):
            raise ERR_BAD_REQUEST_BODY.joined(f"proxy {position}: expected a JSON object, got {item!r}")
        try:
            name = field(item, "name", str, "")
            listen = field(item, "listen", str, "")
            upstream = field(item, "upstream", str, "")
            enabled = field(item, "enabled", bool, True)
        except ValueError as exc:
            raise ERR_BAD_REQUEST_BODY.joined(f"proxy {position}: {exc}") from None
        if not name:
            raise ERR_MISSING_FIELD.joined(f"name at proxy {position}")
        if not upstream:
            raise ERR_MISSING_FIELD.joined(f"upstream at proxy {position}")
        entries.append((str(name), str(listen), str(upstream), bool(enabled)))
    return entries
