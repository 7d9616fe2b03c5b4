"""The app's row-level security, as the Supabase migration's policies define it (supabase/migrations/).

One module answers the questions the region server asks:
  - which rows may a caller read (`read_predicate`, a SQL condition for PostgREST selects; `can_read` for one row,
    used by the Realtime fan-out),
  - which existing rows may a caller update or delete (`write_predicate`, the policies' USING), and
  - may a caller write this new or changed row (`can_write`, the policies' WITH CHECK).

Rules (each mirrors a policy in the migration):
  - service_role (and supabase_admin) bypass everything;
  - anon reads and writes nothing in the app tables;
  - an authenticated user reads every profile and writes only their own;
  - reads conversations they belong to or created (the creator must see the row it just inserted, before it adds
    itself as a member: `insert … returning` applies the SELECT policy), members and messages of conversations
    they belong to;
  - creates a conversation only as its `created_by`; members update it; its creator deletes it;
  - adds members to a conversation they created or belong to; a member leaves (deletes their own row), the
    creator removes anyone; the creator changes roles;
  - sends messages only as themselves (`sender_id` = their id) into conversations they belong to, and edits or
    deletes only their own messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from harness.model.keys import Claims
from harness.refstack.region.db import Predicate
from harness.refstack.region.membership import Membership

Operation = Literal["insert", "update", "delete"]
CreatorLookup = Callable[[str], "str | None"]
"""conversation id → its `created_by` (None if unknown); the REST layer passes a database lookup."""

_MEMBER_OF = "SELECT conversation_id FROM conversation_members WHERE user_id = ?"
_CREATED_BY = "SELECT id FROM conversations WHERE created_by = ?"
_NOTHING = Predicate("0")


def _uid(claims: Claims | None) -> str | None:
    return claims.sub if claims is not None and claims.role == "authenticated" else None


def read_predicate(claims: Claims | None, table: str) -> Predicate | None:
    """The SQL condition a select is limited to; None = no limit."""
    if claims is not None and claims.is_service:
        return None
    uid = _uid(claims)
    if uid is None:
        return _NOTHING
    if table == "profiles":
        return None
    if table == "conversations":
        return Predicate(f"id IN ({_MEMBER_OF}) OR created_by = ?", (uid, uid))
    if table in ("conversation_members", "messages"):
        return Predicate(f"conversation_id IN ({_MEMBER_OF})", (uid,))
    return _NOTHING


def write_predicate(claims: Claims | None, table: str, operation: Literal["update", "delete"]) -> Predicate | None:
    """The rows an update or delete may touch (the policies' USING); None = no limit."""
    if claims is not None and claims.is_service:
        return None
    uid = _uid(claims)
    if uid is None:
        return _NOTHING
    if table == "profiles":
        return Predicate("id = ?", (uid,))
    if table == "conversations":
        if operation == "delete":
            return Predicate("created_by = ?", (uid,))
        return Predicate(f"id IN ({_MEMBER_OF})", (uid,))
    if table == "conversation_members":
        if operation == "delete":
            return Predicate(f"user_id = ? OR conversation_id IN ({_CREATED_BY})", (uid, uid))
        return Predicate(f"conversation_id IN ({_CREATED_BY})", (uid,))
    if table == "messages":
        return Predicate(f"sender_id = ? AND conversation_id IN ({_MEMBER_OF})", (uid, uid))
    return _NOTHING


def can_read(claims: Claims | None, table: str, record: dict[str, Any], membership: Membership) -> bool:
    """Whether one row is visible to the caller: the in-memory twin of `read_predicate` (Realtime fan-out)."""
    if claims is not None and claims.is_service:
        return True
    uid = _uid(claims)
    if uid is None:
        return False
    if table == "profiles":
        return True
    if table == "conversations":
        return membership.is_member(uid, record.get("id")) or record.get("created_by") == uid
    if table in ("conversation_members", "messages"):
        return membership.is_member(uid, record.get("conversation_id"))
    return False


def can_write(
    claims: Claims | None,
    table: str,
    operation: Operation,
    record: dict[str, Any],
    membership: Membership,
    creator_of: CreatorLookup | None = None,
) -> bool:
    """WITH CHECK for a new or changed row (which existing rows may change is `write_predicate`'s job)."""
    if claims is not None and claims.is_service:
        return True
    uid = _uid(claims)
    if uid is None:
        return False
    if table == "profiles":
        return record.get("id") == uid
    if table == "conversations":
        if operation == "insert":
            return record.get("created_by") == uid
        return membership.is_member(uid, record.get("id")) or record.get("created_by") == uid
    if table == "conversation_members":
        conversation = record.get("conversation_id")
        if membership.is_member(uid, conversation):
            return True
        # Starting a conversation: its creator adds the first members, itself included.
        if creator_of is not None and isinstance(conversation, str):
            return creator_of(conversation) == uid
        return record.get("_conversation_created_by") == uid  # older callers pass the creator in the record
    if table == "messages":
        if operation == "delete":
            return record.get("sender_id") == uid
        return record.get("sender_id") == uid and membership.is_member(uid, record.get("conversation_id"))
    return False
