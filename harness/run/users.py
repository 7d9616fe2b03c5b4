"""Test users for a run: create them (admin API), their profiles, conversations and memberships; write a
credentials file; remove them all again.

    provision(target, count, group_size, prefix=, run_id=)
      1. admin create-user ×count   (bounded thread pool; confirmed; tagged in user_metadata)
      2. profiles: the sign-up trigger makes them; any missing are inserted (a project without the trigger)
      3. conversations, then members: batched REST inserts (JSON arrays, ids chosen here)
      → Credentials (users with passwords, conversations with members, target URL; never the service key)
    cleanup(target, credentials | prefix)
      files under the conversations' folders → messages → members → conversations → profiles → users (admin delete)

Table names are the deployment's (`TargetConfig.names`); the protocol is `harness.clients.supabase` (sync client).

Everything is tagged so a prefix alone finds it again: emails are `<prefix>.<run_id>.<n>@<domain>`, conversation
titles `<prefix>.<run_id>.<kind>.<block>.<i>`. The layout (blocks, ring pairs, one group per block) is
`harness.model.assign.Layout`, so the Locust side can map workers to users without reading anything but this file.

Writes use the service_role key, which bypasses row-level security; it is sent in headers only, never logged,
and not written to the credentials file (mode 0600 from creation: it holds passwords).
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import httpx

from harness.clients.supabase import api
from harness.clients.supabase.sync import SupabaseClient
from harness.errors import ConfigError, HarnessError, ProvisionError, TargetUnreachable
from harness.model.assign import Layout, block_conversations
from harness.model.credentials import Conversation, Credentials, User, check_tag
from harness.model.target_config import TargetConfig

CONCURRENCY = 16
"""Parallel admin calls while creating or deleting users (GoTrue hashes each password: a few ms of server CPU)."""
BATCH_ROWS = 500
"""Rows per PostgREST insert (one JSON array)."""
FILTER_IDS = 100
"""Ids per `in.(…)` filter: keeps URLs well under common 8 KB limits (a UUID is 36 characters)."""
PAGE_USERS = 1000
"""Users per admin list page when cleaning up by prefix."""
PAGE_OBJECTS = 1000
"""Storage entries per list page when removing the files uploaded into the run's conversations."""
MAX_PAGES = 10_000
"""Bound on list pages in one cleanup (10 million entries)."""
DEFAULT_EMAIL_DOMAIN = "example.com"


Progress = Callable[[str, int, int], None]
"""progress(phase, done, total): called as work completes (phases: users, profiles, conversations, members, …)."""


# ---- HTTP plumbing ------------------------------------------------------------------------------------------------


class _Admin:
    """The service-role calls provisioning and cleanup make; errors become ProvisionError / TargetUnreachable."""

    def __init__(self, target: TargetConfig, purpose: str) -> None:
        key = target.require_service_key(purpose).reveal()
        self.target = target
        self.names = target.names
        self.client = SupabaseClient(
            target.supabase_url,
            key,
            names=target.names,
            timeout_s=target.http_timeout_s,
            max_connections=CONCURRENCY,
        )

    def close(self) -> None:
        self.client.close()

    def call(
        self, what: str, ok: Sequence[int], send: Callable[..., httpx.Response], *args: Any, **kwargs: Any
    ) -> httpx.Response:
        """`send(*args, **kwargs)` (a SupabaseClient method); its response when the status is in `ok`."""
        try:
            response = send(*args, **kwargs)
        except httpx.HTTPError as exc:
            raise TargetUnreachable(
                f"{what}: {self.target.supabase_url} did not answer ({type(exc).__name__}: {exc})"
            ) from None
        if response.status_code not in ok:
            raise _http_error(what, response)
        return response


def _http_error(what: str, response: httpx.Response) -> HarnessError:
    # GoTrue (both error shapes, docs/protocols.md §2.4), PostgREST (§3.3) and gateway bodies: "<code> <message>".
    try:
        body = response.json()
        code = next((body[k] for k in ("error_code", "code") if isinstance(body.get(k), str)), "")
        text = next((body[k] for k in ("msg", "message", "error_description", "error") if body.get(k)), "")
        detail = f"{code} {text}".strip()
    except (ValueError, AttributeError):
        detail = response.text[:200]
    message = f"{what}: HTTP {response.status_code} {detail}".rstrip()
    if response.status_code in (401, 403):
        return ConfigError(f"{message}; is SUPABASE_SERVICE_ROLE_KEY this project's service_role key?")
    return ProvisionError(message)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _parallel(jobs: Sequence[Any], run: Callable[[Any], Any], phase: str, progress: Progress | None) -> list[Any]:
    """Run `run(job)` for each job on CONCURRENCY threads; results in job order; the first error is raised."""
    results: list[Any] = [None] * len(jobs)
    with ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="harness-users") as pool:
        futures = {pool.submit(run, job): i for i, job in enumerate(jobs)}
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                results[futures[future]] = future.result()
                if progress is not None:
                    progress(phase, done, len(jobs))
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results


# ---- provisioning -------------------------------------------------------------------------------------------------


def provision(
    target: TargetConfig,
    count: int,
    group_size: int,
    *,
    prefix: str,
    run_id: str,
    email_domain: str = DEFAULT_EMAIL_DOMAIN,
    progress: Progress | None = None,
) -> Credentials:
    """Create `count` users in blocks of `group_size`, their profiles, conversations and memberships.

    On any failure, whatever was created is removed (best effort) before the error is raised.
    """
    if count < 1:
        raise ConfigError(f"count: {count} is not a number of users (e.g. 1000)")
    if group_size < 2:
        raise ConfigError(f"group size: {group_size} is too small; a conversation needs 2 or more members (e.g. 4)")
    check_tag("prefix", prefix)
    check_tag("run id", run_id)
    admin = _Admin(target, "provisioning test users")
    created: list[str] = []
    conversations: list[Conversation] = []
    try:
        users = _create_users(admin, count, prefix, run_id, email_domain, created, progress)
        _ensure_profiles(admin, users, progress)
        conversations = _plan_conversations(users, group_size, prefix, run_id)
        _insert_conversations(admin, conversations, progress)
        return Credentials(run_id, prefix, target.supabase_url, group_size, users, conversations)
    except BaseException:
        # Best effort: the original error matters more; `harness users cleanup --prefix` can finish the job.
        with contextlib.suppress(HarnessError):
            _remove(admin, created, [c.id for c in conversations], None)
        raise
    finally:
        admin.close()


def _create_users(
    admin: _Admin,
    count: int,
    prefix: str,
    run_id: str,
    domain: str,
    created: list[str],
    progress: Progress | None,
) -> list[User]:
    def create(index: int) -> User:
        email = f"{prefix}.{run_id}.{index}@{domain}"
        password = secrets.token_urlsafe(18)
        metadata = {"display_name": f"{prefix} {index}", "harness_prefix": prefix, "harness_run": run_id}
        response = admin.call(
            f"create user {email}", (200, 201), admin.client.admin_create_user, email, password, metadata
        )
        user_id = str(response.json()["id"])
        created.append(user_id)  # list.append is atomic: safe from the pool's threads
        return User(index, user_id, email, password)

    return _parallel(range(count), create, "users", progress)


def _ensure_profiles(admin: _Admin, users: list[User], progress: Progress | None) -> None:
    table = admin.names.profiles
    missing: list[User] = []
    for done, batch in enumerate(_chunks(users, FILTER_IDS), start=1):
        ids = {"id": api.in_(u.id for u in batch)}
        response = admin.call("read profiles", (200,), admin.client.select, table, columns="id", filters=ids)
        have = {row["id"] for row in response.json()}
        missing += [u for u in batch if u.id not in have]
        if progress is not None:
            progress("profiles", min(done * FILTER_IDS, len(users)), len(users))
    for batch in _chunks(missing, BATCH_ROWS):
        rows = [{"id": u.id, "display_name": u.email.split("@", 1)[0]} for u in batch]
        admin.call("create profiles", (201,), admin.client.insert, table, rows, returning=False)


def _plan_conversations(users: list[User], group_size: int, prefix: str, run_id: str) -> list[Conversation]:
    layout = Layout(len(users), group_size)
    out: list[Conversation] = []
    for b, block in enumerate(layout.blocks()):
        for i, (kind, slots) in enumerate(block_conversations(len(block))):
            members = tuple(users[block[s]].id for s in slots)
            out.append(Conversation(str(uuid.uuid4()), kind, members, b, f"{prefix}.{run_id}.{kind}.{b}.{i}"))
    return out


def _insert_conversations(admin: _Admin, conversations: list[Conversation], progress: Progress | None) -> None:
    names, insert = admin.names, admin.client.insert
    for done, batch in enumerate(_chunks(conversations, BATCH_ROWS), start=1):
        rows = [
            {"id": c.id, "title": c.title, "is_group": c.kind == "group", "created_by": c.members[0]} for c in batch
        ]
        admin.call("create conversations", (201,), insert, names.conversations, rows, returning=False)
        if progress is not None:
            progress("conversations", min(done * BATCH_ROWS, len(conversations)), len(conversations))
    members = [
        {"conversation_id": c.id, "user_id": m, "role": "owner" if i == 0 else "member"}
        for c in conversations
        for i, m in enumerate(c.members)
    ]
    for done, batch in enumerate(_chunks(members, BATCH_ROWS), start=1):
        admin.call("add members", (201,), insert, names.members, batch, returning=False)
        if progress is not None:
            progress("members", min(done * BATCH_ROWS, len(members)), len(members))


# ---- cleanup ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Removed:
    users: int
    conversations: int


def cleanup(target: TargetConfig, what: Credentials | str, *, progress: Progress | None = None) -> Removed:
    """Remove a run's messages, members, conversations, profiles and users: from a Credentials, or every run
    tagged with a prefix (a string). Safe to repeat: what is already gone is skipped."""
    admin = _Admin(target, "cleaning up test users")
    try:
        if isinstance(what, Credentials):
            user_ids = [u.id for u in what.users]
            conversation_ids = [c.id for c in what.conversations]
        else:
            check_tag("prefix", what)
            user_ids = _users_with_prefix(admin, what)
            conversation_ids = _conversations_with_prefix(admin, what)
        _remove(admin, user_ids, conversation_ids, progress)
        return Removed(len(user_ids), len(conversation_ids))
    finally:
        admin.close()


def _users_with_prefix(admin: _Admin, prefix: str) -> list[str]:
    ids: list[str] = []
    for page in range(1, 100_000):
        response = admin.call("list users", (200,), admin.client.admin_list_users, page, PAGE_USERS)
        users = response.json().get("users", [])
        ids += [u["id"] for u in users if str(u.get("email", "")).startswith(f"{prefix}.")]
        if len(users) < PAGE_USERS:
            break
    return ids


def _conversations_with_prefix(admin: _Admin, prefix: str) -> list[str]:
    response = admin.call(
        "list conversations", (200,), admin.client.select, admin.names.conversations, columns="id",
        filters={"title": api.like(f"{prefix}.*")},
    )  # fmt: skip
    return [row["id"] for row in response.json()]


def _remove(admin: _Admin, user_ids: list[str], conversation_ids: list[str], progress: Progress | None) -> None:
    names, select, delete = admin.names, admin.client.select, admin.client.delete
    deleted = (200, 204)
    # Conversations the users created during a run (not in the credentials) go too, with their messages.
    known = set(conversation_ids)
    for batch in _chunks(user_ids, FILTER_IDS):
        response = admin.call("list conversations", (200,), select, names.conversations, columns="id",
                              filters={"created_by": api.in_(batch)})  # fmt: skip
        extra = [row["id"] for row in response.json() if row["id"] not in known]
        known.update(extra)
        conversation_ids = [*conversation_ids, *extra]
    _remove_files(admin, conversation_ids)
    for batch in _chunks(conversation_ids, FILTER_IDS):
        in_batch = api.in_(batch)
        admin.call("delete messages", deleted, delete, names.messages, filters={"conversation_id": in_batch})
        admin.call("delete members", deleted, delete, names.members, filters={"conversation_id": in_batch})
        admin.call("delete conversations", deleted, delete, names.conversations, filters={"id": in_batch})
    if progress is not None and conversation_ids:
        progress("conversations", len(conversation_ids), len(conversation_ids))
    for batch in _chunks(user_ids, FILTER_IDS):
        # Anything else the users left behind (messages or memberships elsewhere, e.g. made by a load test).
        in_batch = api.in_(batch)
        admin.call("delete messages", deleted, delete, names.messages, filters={"sender_id": in_batch})
        admin.call("delete members", deleted, delete, names.members, filters={"user_id": in_batch})
        admin.call("delete profiles", deleted, delete, names.profiles, filters={"id": in_batch})

    def delete_user(user_id: str) -> None:
        admin.call("delete user", (200, 204, 404), admin.client.admin_delete_user, user_id)

    _parallel(user_ids, delete_user, "delete users", progress)


def _listing(admin: _Admin, prefix: str) -> Iterator[dict[str, Any]]:
    """Every entry one folder level under `prefix` in the attachments bucket; nothing when the bucket is missing."""
    for page in range(MAX_PAGES):
        response = admin.call(
            f"list files under {prefix or 'the bucket root'}", (200, 400, 404), admin.client.list_objects, prefix,
            limit=PAGE_OBJECTS, offset=page * PAGE_OBJECTS,
        )  # fmt: skip
        if response.status_code != 200:
            if "not found" in response.text.lower():
                return  # a deployment without the bucket holds no files
            raise _http_error(f"list files under {prefix or 'the bucket root'}", response)
        entries = response.json()
        yield from entries
        if len(entries) < PAGE_OBJECTS:
            return


def _remove_files(admin: _Admin, conversation_ids: list[str]) -> None:
    """Files the users uploaded (`<bucket>/<conversation id>/<name>`, the app's layout): deleting users and rows
    leaves Storage objects behind, on Supabase as on the reference stack. One root listing finds the folders."""
    ours = set(conversation_ids)
    folders = [e["name"] for e in _listing(admin, "") if e.get("id") is None and e.get("name") in ours]
    for folder in folders:
        files = [f"{folder}/{e['name']}" for e in _listing(admin, folder) if e.get("id") is not None]
        for batch in _chunks(files, FILTER_IDS):
            admin.call("delete files", (200,), admin.client.remove, batch)
