"""Who belongs to which conversation, kept in memory and in step with the database.

The access rules (REST row-level security, storage, the livekit-token function) and the Realtime fan-out all ask
"is user U a member of conversation C?" on hot paths; answering from two dicts instead of SQL keeps reads and
fan-out cheap. The maps are built once from the table and then follow the change log, so replicated changes
(on a replica) update them too.
"""

from __future__ import annotations

from collections import defaultdict

from harness.refstack.region.db import Change, Database


class Membership:
    def __init__(self, db: Database) -> None:
        self._by_user: defaultdict[str, set[str]] = defaultdict(set)
        self._by_conversation: defaultdict[str, set[str]] = defaultdict(set)
        rows, _ = db.select("conversation_members", columns=["conversation_id", "user_id"])
        for row in rows:
            self._add(row["conversation_id"], row["user_id"])
        db.listen(self._on_change)

    def _add(self, conversation_id: str, user_id: str) -> None:
        self._by_user[user_id].add(conversation_id)
        self._by_conversation[conversation_id].add(user_id)

    def _remove(self, conversation_id: str, user_id: str) -> None:
        self._by_user[user_id].discard(conversation_id)
        self._by_conversation[conversation_id].discard(user_id)

    def _on_change(self, change: Change) -> None:
        if change.table != "conversation_members":
            return
        if change.old_record is not None:
            self._remove(change.old_record["conversation_id"], change.old_record["user_id"])
        if change.record is not None:
            self._add(change.record["conversation_id"], change.record["user_id"])

    def is_member(self, user_id: str | None, conversation_id: str | None) -> bool:
        if user_id is None or conversation_id is None:
            return False
        return conversation_id in self._by_user.get(user_id, ())

    def conversations_of(self, user_id: str) -> frozenset[str]:
        return frozenset(self._by_user.get(user_id, ()))

    def members_of(self, conversation_id: str) -> frozenset[str]:
        return frozenset(self._by_conversation.get(conversation_id, ()))
