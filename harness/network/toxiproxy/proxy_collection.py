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
from harness.network.toxiproxy.proxy import Proxy, check_listen
from harness.network.toxiproxy.wire import field, json_type


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
        """POST /populate: check every entry first (as Toxiproxy does), then add or replace in order. A failure
        part-way (a listen that fails) undoes what this request did, so a failed populate changes nothing but the
        connections of the proxies it had replaced; Toxiproxy would keep the entries applied before the failure.
        Returns the proxies, or no proxies and the error."""
        try:
            entries = _parse_populate(body)
        except ApiError as err:
            return [], err
        done: list[Proxy] = []
        undo: list[tuple[Proxy, Proxy | None, tuple[str, str, bool]]] = []  # (new, replaced, replaced's state)
        async with self._lock:
            try:
                for name, listen, upstream, enabled in entries:
                    done.append(await self._add_or_replace(self.new_proxy(name, listen, upstream), enabled, undo))
            except ApiError as err:
                await self._undo(undo)
                return [], err
        return done, None

    async def _add_or_replace(
        self, proxy: Proxy, start: bool, undo: list[tuple[Proxy, Proxy | None, tuple[str, str, bool]]]
    ) -> Proxy:
        existing = self.proxies.get(proxy.name)
        if existing is not None:
            if not await existing.differs(proxy.listen, proxy.upstream):
                return existing  # unchanged: keep it, its toxics and its connections
            undo.append((proxy, existing, (existing.listen, existing.upstream, existing.enabled)))
            await existing.stop()
        else:
            undo.append((proxy, None, ("", "", False)))
        if start:
            await proxy.start()
        self.proxies[proxy.name] = proxy
        return proxy

    async def _undo(self, undo: list[tuple[Proxy, Proxy | None, tuple[str, str, bool]]]) -> None:
        for proxy, replaced, state in reversed(undo):
            await proxy.stop()
            if replaced is None:
                if self.proxies.get(proxy.name) is proxy:
                    del self.proxies[proxy.name]
            else:
                self.proxies[proxy.name] = replaced
                await replaced.restore(*state)

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
    """Every entry checked before anything changes: types, required fields, listen addresses, unique names."""
    if not isinstance(body, list):
        raise ERR_BAD_REQUEST_BODY.joined(f"expected a JSON array of proxies, got {json_type(body)}")
    entries = []
    names: set[str] = set()
    for position, item in enumerate(body, start=1):
        if not isinstance(item, dict):
            raise ERR_BAD_REQUEST_BODY.joined(f"proxy {position}: expected a JSON object, got {json_type(item)}")
        try:
            name = str(field(item, "name", str, ""))
            listen = str(field(item, "listen", str, ""))
            upstream = str(field(item, "upstream", str, ""))
            enabled = bool(field(item, "enabled", bool, True))
            check_listen(listen)
        except ValueError as exc:
            raise ERR_BAD_REQUEST_BODY.joined(f"proxy {position}: {exc}") from None
        if not name:
            raise ERR_MISSING_FIELD.joined(f"name at proxy {position}")
        if not upstream:
            raise ERR_MISSING_FIELD.joined(f"upstream at proxy {position}")
        if name in names:
            raise ERR_BAD_REQUEST_BODY.joined(f"proxy {position}: duplicate proxy name (each name at most once)")
        names.add(name)
        entries.append((name, listen, upstream, enabled))
    return entries
