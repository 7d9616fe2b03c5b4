"""A proxy's toxics: one ordered chain per direction, applied to every live link (Toxiproxy's
`toxic_collection.go`). All changes hold one lock, so a link's stubs always line up with its chain."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from harness.network.toxiproxy.errors import (
    ERR_BAD_REQUEST_BODY,
    ERR_INVALID_STREAM,
    ERR_INVALID_TOXIC_TYPE,
    ERR_TOXIC_ALREADY_EXISTS,
    ERR_TOXIC_NOT_FOUND,
)
from harness.network.toxiproxy.link import Link
from harness.network.toxiproxy.stream import Direction
from harness.network.toxiproxy.toxics import REGISTRY, Toxic
from harness.network.toxiproxy.wire import decode_json, field, json_type

if TYPE_CHECKING:
    from harness.network.toxiproxy.connection import Connection


@dataclasses.dataclass
class ToxicWrapper:
    """A toxic as the API sees it: the wire envelope around the toxic's settings."""

    name: str
    type: str
    stream: str
    toxicity: float
    direction: Direction
    toxic: Toxic
    index: int = -1  # position in its direction's chain

    def to_json(self) -> dict[str, object]:
        toxicity = int(self.toxicity) if self.toxicity.is_integer() else self.toxicity  # Go prints 1, not 1.0
        return {
            "attributes": self.toxic.attributes(),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": toxicity,
        }


class ToxicCollection:
    def __init__(self) -> None:
        self.chains: dict[Direction, list[ToxicWrapper]] = {d: [] for d in Direction}
        self.links: set[Link] = set()
        self._lock = asyncio.Lock()

    def toxics(self) -> list[ToxicWrapper]:
        """Upstream toxics first, then downstream, each in chain order (Toxiproxy's listing order)."""
        return [w for d in Direction for w in self.chains[d]]

    def get(self, name: str) -> ToxicWrapper:
        for wrapper in self.toxics():
            if wrapper.name == name:
                return wrapper
        raise ERR_TOXIC_NOT_FOUND

    async def add(self, body: object) -> ToxicWrapper:
        """Create a toxic from a POST body; checks run in Toxiproxy's order."""
        if not isinstance(body, dict):
            raise ERR_BAD_REQUEST_BODY.joined(f"expected a JSON object, got {json_type(body)}")
        try:
            name = field(body, "name", str, "")
            type_name = field(body, "type", str, "")
            stream = field(body, "stream", str, "downstream")
            toxicity = field(body, "toxicity", float, 1.0)
        except ValueError as exc:
            raise ERR_BAD_REQUEST_BODY.joined(exc) from None
        assert isinstance(name, str) and isinstance(type_name, str) and isinstance(stream, str)
        assert isinstance(toxicity, float)
        direction = Direction.parse(stream)
        if direction is None:
            raise ERR_INVALID_STREAM
        name = name or f"{type_name}_{stream}"
        toxic_class = REGISTRY.get(type_name)
        if toxic_class is None:
            raise ERR_INVALID_TOXIC_TYPE
        async with self._lock:
            if any(w.name == name for w in self.toxics()):
                raise ERR_TOXIC_ALREADY_EXISTS
            try:
                toxic = toxic_class.from_attributes(body.get("attributes"))
            except ValueError as exc:
                raise ERR_BAD_REQUEST_BODY.joined(exc) from None
            wrapper = ToxicWrapper(name, type_name, stream, toxicity, direction, toxic)
            chain = self.chains[direction]
            wrapper.index = len(chain)
            chain.append(wrapper)
            for link in self._links(direction):
                link.add_toxic(wrapper)
            return wrapper

    async def update(self, name: str, raw_body: bytes) -> ToxicWrapper:
        """Change `attributes` (missing ones keep their values) and `toxicity`; restarts the toxic on live links."""
        async with self._lock:
            wrapper = self.get(name)  # a missing toxic is reported before a bad body, as in Toxiproxy
            try:
                body = decode_json(raw_body)
            except ValueError as exc:
                raise ERR_BAD_REQUEST_BODY.joined(exc) from None
            if body is None:
                body = {}
            if not isinstance(body, dict):
                raise ERR_BAD_REQUEST_BODY.joined(f"expected a JSON object, got {json_type(body)}")
            try:
                toxicity = field(body, "toxicity", float, wrapper.toxicity)
                toxic = type(wrapper.toxic).from_attributes(body.get("attributes"), wrapper.toxic)
            except ValueError as exc:
                raise ERR_BAD_REQUEST_BODY.joined(exc) from None
            assert isinstance(toxicity, float)
            wrapper.toxic, wrapper.toxicity = toxic, toxicity
            await asyncio.gather(*(link.update_toxic(wrapper) for link in self._links(wrapper.direction)))
            return wrapper

    async def remove(self, name: str) -> None:
        async with self._lock:
            await self._remove(self.get(name))

    async def reset(self) -> None:
        """Remove every toxic (POST /reset)."""
        async with self._lock:
            for direction in Direction:
                while self.chains[direction]:
                    await self._remove(self.chains[direction][0])

    async def _remove(self, wrapper: ToxicWrapper) -> None:
        chain = self.chains[wrapper.direction]
        index = wrapper.index
        del chain[index]
        for i in range(index, len(chain)):
            chain[i].index = i
        links = self._links(wrapper.direction)  # taken with the chain change: later links never had it
        await asyncio.gather(*(link.remove_toxic(wrapper, index) for link in links))
        wrapper.index = -1

    def _links(self, direction: Direction) -> list[Link]:
        return [link for link in self.links if link.direction is direction]

    # -- links ------------------------------------------------------------------------------------------------
    def start_links(self, conn: Connection) -> list[Link]:
        """Create and start both links of a new connection with the current chains."""
        links = []
        for direction in Direction:
            source, dest = conn.wire(direction)
            link = Link(direction, source, dest)
            source.out_link = link
            dest.in_link = link
            if any(w.toxic.resets_peer for w in self.chains[direction]):
                source.set_linger_reset()
                dest.set_linger_reset()
            self.links.add(link)
            links.append(link)
        for link in links:
            link.start(list(self.chains[link.direction]))
        return links

    def forget_links(self, links: list[Link]) -> None:
        self.links.difference_update(links)
