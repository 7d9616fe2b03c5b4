"""What channels and the hub need of a socket, so that they do not import `connection`, which builds on them."""

from __future__ import annotations

from typing import Protocol


class Peer(Protocol):
    """One client socket (`connection.Connection`): frames are queued to it; it can be dropped or closed."""

    def enqueue(self, text: str, hop_key: str | None = None) -> None: ...
    def abort(self) -> None: ...
    async def close(self, code: int) -> None: ...
