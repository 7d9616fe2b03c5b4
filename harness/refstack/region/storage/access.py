"""Who may do what to a stored object: the storage twin of `rls.py` (the app's storage policies, in one function).

Rules, first match wins:
  - service_role (and supabase_admin) may do everything;
  - anyone may read an object of a public bucket (that is what the public URL is for);
  - anon (and any token without `role: authenticated` and a `sub`) may do nothing else;
  - in the conversation buckets (`attachments`) an object is named `<conversation_id>/<file>`: members of that
    conversation may read, list and upload; only the uploader (`owner`, the JWT `sub` at upload) may delete;
    overwriting needs both (a member who owns the object);
  - in any other bucket an authenticated user may upload anywhere and read, list, overwrite and delete only the
    objects they own.

Bucket administration (create, update, empty, delete) is for the service role only; that check lives in
`buckets.py`, since it is about routes, not objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harness.model.keys import Claims
from harness.refstack.region.membership import Membership

Operation = Literal["read", "list", "upload", "update", "delete"]

CONVERSATION_BUCKETS = frozenset({"attachments"})
"""Buckets whose objects live under a conversation id folder, readable by that conversation's members."""


@dataclass(frozen=True)
class BucketInfo:
    id: str
    public: bool = False
    file_size_limit: int | None = None
    allowed_mime_types: tuple[str, ...] | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> BucketInfo:
        mimes = row.get("allowed_mime_types")
        return cls(
            id=str(row["id"]),
            public=bool(row.get("public")),
            file_size_limit=row.get("file_size_limit"),
            allowed_mime_types=tuple(str(m) for m in mimes) if isinstance(mimes, list) and mimes else None,
        )


def user_id(claims: Claims | None) -> str | None:
    """The caller's user id, or None for anon, the service role and tokens without a `sub`."""
    if claims is None or claims.role != "authenticated":
        return None
    return claims.sub


def can_access(
    claims: Claims | None,
    bucket: BucketInfo,
    path: str,
    op: Operation,
    membership: Membership,
    owner: str | None,
) -> bool:
    """Whether the caller may perform `op` on object `path` of `bucket`; `owner` is the object's (None if new)."""
    if claims is not None and claims.is_service:
        return True
    if op == "read" and bucket.public:
        return True
    uid = user_id(claims)
    if uid is None:
        return False
    if bucket.id in CONVERSATION_BUCKETS:
        conversation_id = path.split("/", 1)[0]
        if op == "delete":
            return owner == uid
        member = membership.is_member(uid, conversation_id)
        if op == "update":
            return member and owner == uid
        return member
    if op == "upload":
        return True
    return owner == uid
