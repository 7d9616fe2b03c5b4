"""The tables of the reference stack, as the app's Supabase migration defines them (supabase/migrations/).

One description drives the SQLite DDL, PostgREST column checks and value coercion, so the REST layer and the
database can never disagree about a column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["uuid", "text", "bool", "int", "timestamptz", "jsonb"]

# Tables the official clients may reach through /rest/v1 and Realtime. Everything else is internal.
PUBLIC_TABLES = ("profiles", "conversations", "conversation_members", "messages")


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = True
    default: Literal["uuid", "now"] | bool | str | None = None
    """Server-side default: "uuid" (a new UUID), "now" (the current time), or a literal value."""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ("id",)
    unique: tuple[tuple[str, ...], ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()
    replicated: bool = True
    """Whether changes are shipped to the replica (everything but caches is)."""
    by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})


def _created() -> Column:
    return Column("created_at", "timestamptz", nullable=False, default="now")


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "profiles",
            (
                Column("id", "uuid", nullable=False),
                Column("username", "text"),
                Column("display_name", "text"),
                Column("avatar_url", "text"),
                Column("status", "text"),
                _created(),
                Column("updated_at", "timestamptz", nullable=False, default="now"),
            ),
            unique=(("username",),),
        ),
        Table(
            "conversations",
            (
                Column("id", "uuid", nullable=False, default="uuid"),
                Column("title", "text"),
                Column("is_group", "bool", nullable=False, default=False),
                Column("created_by", "uuid"),
                _created(),
                Column("updated_at", "timestamptz", nullable=False, default="now"),
            ),
        ),
        Table(
            "conversation_members",
            (
                Column("conversation_id", "uuid", nullable=False),
                Column("user_id", "uuid", nullable=False),
                Column("role", "text", nullable=False, default="member"),
                Column("joined_at", "timestamptz", nullable=False, default="now"),
            ),
            primary_key=("conversation_id", "user_id"),
            indexes=(("user_id",),),
        ),
        Table(
            "messages",
            (
                Column("id", "uuid", nullable=False, default="uuid"),
                Column("conversation_id", "uuid", nullable=False),
                Column("sender_id", "uuid", nullable=False),
                Column("client_msg_id", "text", nullable=False),
                Column("content", "text"),
                Column("kind", "text", nullable=False, default="text"),
                Column("attachment_path", "text"),
                Column("metadata", "jsonb"),
                _created(),
            ),
            # A retried send carries the same client_msg_id: the second insert conflicts instead of duplicating.
            unique=(("sender_id", "client_msg_id"),),
            indexes=(("conversation_id", "created_at"),),
        ),
        # Internal tables (GoTrue and Storage); never exposed through /rest/v1.
        Table(
            "auth_users",
            (
                Column("id", "uuid", nullable=False, default="uuid"),
                Column("email", "text", nullable=False),
                Column("password_hash", "text", nullable=False),
                Column("aud", "text", nullable=False),
                Column("role", "text", nullable=False),
                Column("user_metadata", "jsonb"),
                Column("app_metadata", "jsonb"),
                Column("last_sign_in_at", "timestamptz"),
                _created(),
                Column("updated_at", "timestamptz", nullable=False, default="now"),
            ),
            unique=(("email",),),
        ),
        Table(
            "auth_refresh_tokens",
            (
                Column("token", "text", nullable=False),
                Column("user_id", "uuid", nullable=False),
                Column("session_id", "uuid", nullable=False),
                Column("revoked", "bool", nullable=False, default=False),
                _created(),
            ),
            primary_key=("token",),
            indexes=(("user_id",),),
        ),
        Table(
            "storage_buckets",
            (
                Column("id", "text", nullable=False),
                Column("name", "text", nullable=False),
                Column("owner", "uuid"),
                Column("public", "bool", nullable=False, default=False),
                Column("file_size_limit", "int"),
                Column("allowed_mime_types", "jsonb"),
                _created(),
                Column("updated_at", "timestamptz", nullable=False, default="now"),
            ),
        ),
        Table(
            "storage_objects",
            (
                Column("id", "uuid", nullable=False, default="uuid"),
                Column("bucket_id", "text", nullable=False),
                Column("name", "text", nullable=False),
                Column("owner", "uuid"),
                Column("metadata", "jsonb"),
                # Blob file name under <data-dir>/objects/: content-addressed, so replication ships it once.
                Column("content_sha256", "text"),
                _created(),
                Column("updated_at", "timestamptz", nullable=False, default="now"),
                Column("last_accessed_at", "timestamptz", nullable=False, default="now"),
            ),
            unique=(("bucket_id", "name"),),
            # "Is this blob still used?" on every delete and overwrite.
            indexes=(("content_sha256",),),
        ),
    )
}
