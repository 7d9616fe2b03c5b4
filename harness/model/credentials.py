"""The credentials file of a run's test users: who they are, their conversations, and the target they live on.

Written by `harness users provision` and by runs (mode 0600 from creation: it holds passwords; never the service
key); read by Locust workers, which map themselves to users with `harness.model.assign`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.errors import ConfigError
from harness.model.files import parse_json, read_text

FORMAT = "harness-credentials/1"
_TAG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")

ConversationKind = Literal["pair", "group"]


@dataclass(frozen=True)
class User:
    index: int
    id: str
    email: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Conversation:
    id: str
    kind: ConversationKind
    members: tuple[str, ...]
    """User ids."""
    block: int
    title: str = ""


@dataclass
class Credentials:
    """What a run needs to sign its users in: users, conversations, target URL. Saved with mode 0600."""

    run_id: str
    prefix: str
    target_url: str
    group_size: int
    users: list[User]
    conversations: list[Conversation]
    _by_user: dict[str, list[Conversation]] | None = field(default=None, repr=False, compare=False)

    def conversations_of(self, user_id: str) -> list[Conversation]:
        if self._by_user is None:
            self._by_user = {}
            for conversation in self.conversations:
                for member in conversation.members:
                    self._by_user.setdefault(member, []).append(conversation)
        return self._by_user.get(user_id, [])

    def membership(self) -> dict[str, tuple[str, ...]]:
        """conversation id → member user ids (what `delivery.DeliveryTracker` takes)."""
        return {c.id: c.members for c in self.conversations}

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "run_id": self.run_id,
            "prefix": self.prefix,
            "target_url": self.target_url,
            "group_size": self.group_size,
            "users": [{"id": u.id, "email": u.email, "password": u.password} for u in self.users],
            "conversations": [
                {"id": c.id, "kind": c.kind, "members": list(c.members), "block": c.block, "title": c.title}
                for c in self.conversations
            ],
        }

    @classmethod
    def from_json(cls, data: Any, where: str = "credentials") -> Credentials:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError(f'{where}: not a harness credentials file (expected "format": "{FORMAT}")')
        try:
            users = [User(i, str(u["id"]), str(u["email"]), str(u["password"])) for i, u in enumerate(data["users"])]
            conversations = [
                Conversation(str(c["id"]), c["kind"], tuple(str(m) for m in c["members"]), int(c["block"]), c["title"])
                for c in data["conversations"]
            ]
            return cls(
                str(data["run_id"]), str(data["prefix"]), str(data["target_url"]), int(data["group_size"]),
                users, conversations,
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ConfigError(f"{where}: malformed credentials file ({type(exc).__name__}: {exc})") from None

    def save(self, path: Path) -> None:
        """Write atomically; the file is created 0600 (never world-readable, even for an instant)."""
        write_private(path, json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Credentials:
        return cls.from_json(parse_json(read_text(path, "credentials file"), str(path)), str(path))


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` via a 0600 temporary file in the same folder and an atomic rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def new_run_id() -> str:
    """A short, sortable run id: UTC time plus randomness (`20240601t120000-3fa2`)."""
    return time.strftime("%Y%m%dt%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def check_tag(name: str, value: str) -> str:
    if not _TAG.match(value):
        raise ConfigError(
            f"{name}: {value!r} is not a valid tag; use 1-40 lowercase letters, digits and '-', starting with a "
            "letter or digit (e.g. loadtest)"
        )
    return value
