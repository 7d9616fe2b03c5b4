"""Attachments for one signed-in user: uploads of sizes drawn from a distribution, downloads of its own and
other members' files, signed URLs. Objects are named `<conversation id>/<uuid>.bin`, as the app stores them.

Upload bodies are slices of one random block generated per process (random bytes do not compress, like real
photos and videos; one block avoids generating up to 10 MB per upload).
"""

from __future__ import annotations

import functools
import random
import uuid
from typing import TYPE_CHECKING

from harness.clients.supabase.session import SupabaseSession
from harness.model.metrics import ACKED_UPLOAD
from harness.scenarios.runstate import RunState
from harness.scenarios.sizes import MAX_BYTES, SizeDistribution

if TYPE_CHECKING:
    from harness.scenarios.base import AccountUser

SIGNED_URL_TTL_S = 60
ACKED = {ACKED_UPLOAD: True}
"""Every download names an object whose upload was acknowledged (`upload` records only those), so a 404 is filed
as `acked_object_missing`, never as the target's ordinary error (harness/loadgen/plugin.py)."""


@functools.lru_cache(maxsize=1)
def _block() -> bytes:
    return random.Random(1).randbytes(MAX_BYTES)


def payload(size_bytes: int, rng: random.Random) -> bytes:
    """`size_bytes` of incompressible data (a random window of the process's block)."""
    size_bytes = min(size_bytes, MAX_BYTES)
    start = rng.randrange(0, MAX_BYTES - size_bytes + 1)
    return _block()[start : start + size_bytes]


class Files:
    def __init__(
        self,
        session: SupabaseSession,
        user_id: str,
        conversations: list[str],
        state: RunState,
        sizes: SizeDistribution,
        rng: random.Random | None = None,
    ) -> None:
        self.session = session
        self.user_id = user_id
        self.conversations = conversations
        self.state = state
        self.sizes = sizes
        self.rng = rng or random.Random()

    def upload(self) -> bool:
        if not self.conversations:
            return False
        conversation = self.rng.choice(self.conversations)
        path = f"{conversation}/{uuid.uuid4().hex}.bin"
        data = payload(self.sizes.draw(self.rng), self.rng)
        reply = self.session.upload(path, data, content_type="application/octet-stream")
        if reply.ok:
            self.state.add_file(conversation, path, self.user_id)
        return reply.ok

    def _pick(self) -> str | None:
        """A recent file of one of the user's conversations (its own or another member's)."""
        candidates = [c for c in self.conversations if self.state.files.get(c)]
        if not candidates:
            return None
        path, _owner = self.rng.choice(self.state.files[self.rng.choice(candidates)])
        return path

    def download(self) -> bool | None:
        """None when there is nothing to download yet."""
        path = self._pick()
        return None if path is None else self.session.download(path, context=ACKED).ok

    def signed_download(self) -> bool | None:
        """Sign a URL for a recent file, then fetch it (what opening an attachment in the app does)."""
        path = self._pick()
        if path is None:
            return None
        signed = self.session.sign(path, expires_in_s=SIGNED_URL_TTL_S)
        url = signed.body.get("signedURL") if signed.ok and isinstance(signed.body, dict) else None
        return bool(url) and self.session.fetch_signed(str(url), context=ACKED).ok


def files_for(user: AccountUser) -> Files:
    assert user.session is not None
    state = user.harness_state
    return Files(user.session, user.user_id, user.conversation_ids(), state, state.settings.file_sizes, user.rng)
