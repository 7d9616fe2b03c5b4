"""What channels and the hub need of a socket, so that they do not import `connection`, which builds on them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from harness.refstack.region.realtime.codec import Codec


class Peer(Protocol):
    """One client socket (`connection.Connection`): frames are queued to it; it can be dropped or closed."""

    codec: Codec
    """The socket's serializer (vsn 1.0.0 or 2.0.0): frames for it are built with it."""

    def enqueue(self, text: str | bytes, hop_key: str | None = None) -> None: ...
    def abort(self) -> None: ...
    async def close(self, code: int) -> None: ...
