"""The app's row-level security, as the Supabase migration's policies define it (supabase/migrations/).

One module answers both questions the region server asks:
  - which rows may a caller read (a SQL predicate for PostgREST selects, `can_read` for one row, used by the
    Realtime fan-out), and
  - may a caller write this row (`can_write`, PostgREST's WITH CHECK).

Rules:
  - service_role (and supabase_admin) bypass everything;
  - anon reads and writes nothing in the app tables;
  - an authenticated user reads every profile and writes only their own;
  - reads and writes conversations, members and messages only of conversations they belong to; may create a
    conversation they are `created_by`, may add members to a conversation they created or belong to, and
    sends messages only as themselves (`sender_id` = their id).
"""

from __future__ import annotations

from typing import Any, Literal

from harness.refstack.keys import Claims
from harness.refstack.region.db import Predicate
from harness.refstack.region.membership import Membership

Operation = Literal["insert", "update", "delete"]

_MEMBER_OF = "SELECT conversation_id FROM conversation_members WHERE user_id = ?"


def read_predicate(claims: Claims | None, table: str) -> Predicate | None:
    """The SQL condition a select (or the row set of an update/delete) is limited to; None = no limit."""
    if claims is not None and claims.is_service:
        return None
    uid = claims.sub if claims is not None and claims.role == "authenticated" else None
    if uid is None:
        return Predicate("0")
    if table == "profiles":
        return None
    if table == "conversations":
        return Predicate(f"id IN ({_MEMBER_OF})", (uid,))
    if table in ("conversation_members", "messages"):
        return Predicate(f"conversation_id IN ({_MEMBER_OF})", (uid,))
    return Predicate("0")


def can_read(claims: Claims | None, table: str, record: dict[str, Any], membership: Membership) -> bool:
    """Whether one row is visible to the caller: the in-memory twin of `read_predicate` (Realtime fan-out)."""
    if claims is not None and claims.is_service:
        return True
    uid = claims.sub if claims is not None and claims.role == "authenticated" else None
    if uid is None:
        return False
    if table == "profiles":
        return True
    if table == "conversations":
        return membership.is_member(uid, record.get("id"))
    if table in ("conversation_members", "messages"):
        return membership.is_member(uid, record.get("conversation_id"))
    return False


def can_write(
    claims: Claims | None, table: str, operation: Operation, record: dict[str, Any], membership: Membership
) -> bool:
    """WITH CHECK for a new or changed row (the visibility of the old row is `read_predicate`'s job)."""
    if claims is not None and claims.is_service:
        return True
    uid = claims.sub if claims is not None and claims.role == "authenticated" else None
    if uid is None:
        return False
    if table == "profiles":
        return record.get("id") == uid
    if table == "conversations":
        if operation == "insert":
            return record.get("created_by") == uid
        return membership.is_member(uid, record.get("id"))
    if table == "conversation_members":
        conversation = record.get("conversation_id")
        # Joining a conversation: its creator adds the first members (itself included), members add others.
        return membership.is_member(uid, conversation) or _created_by(record, uid)
    if table == "messages":
        if operation == "delete":
            return record.get("sender_id") == uid
        return record.get("sender_id") == uid and membership.is_member(uid, record.get("conversation_id"))
    return False


def _created_by(record: dict[str, Any], uid: str) -> bool:
    """Filled in by the REST layer: `_conversation_created_by` is the conversation's creator, looked up there."""
    return record.get("_conversation_created_by") == uid
