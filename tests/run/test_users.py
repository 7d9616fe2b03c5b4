"""Provisioning and cleanup against the reference stack's region server (a real process on a port the OS chose)."""

from __future__ import annotations

import argparse
import json
import os
import socket
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.clients.supabase.sync import SupabaseClient
from harness.errors import ConfigError, ProvisionError, TargetUnreachable
from harness.model import keys
from harness.model.credentials import Credentials, write_private
from harness.model.delivery import Envelope
from harness.model.target_config import Secret, TargetConfig
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts
from harness.run import users, users_cli
from harness.run.users import cleanup, provision
from tests.refstack.region.conftest import create_conversation, create_user, user_headers

SERVICE = {"apikey": keys.SERVICE_ROLE_KEY, "Authorization": f"Bearer {keys.SERVICE_ROLE_KEY}"}


@pytest.fixture(scope="module")
def target() -> Iterator[TargetConfig]:
    with ReferenceStack(StackConfig(ports=StackPorts.any(), pieces=("primary",))) as stack:
        yield TargetConfig.for_reference_stack(stack.endpoints.primary_url)


def rows(target: TargetConfig, table: str, **filters: str) -> list[dict[str, object]]:
    response = httpx.get(f"{target.supabase_url}/rest/v1/{table}", headers=SERVICE, params=filters, timeout=10)
    assert response.status_code == 200, response.text
    result = response.json()
    assert isinstance(result, list)
    return result


def sign_in(target: TargetConfig, email: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{target.supabase_url}/auth/v1/token?grant_type=password",
        headers={"apikey": keys.ANON_KEY},
        json={"email": email, "password": password},
        timeout=10,
    )


def in_(ids: list[str]) -> str:
    return "in.(" + ",".join(ids) + ")"


def test_provision_signs_in_members_conversations_and_0600_file(target: TargetConfig, tmp_path: Path) -> None:
    phases: set[str] = set()
    credentials = provision(
        target, 20, 4, prefix="t1", run_id="r1", progress=lambda phase, done, total: phases.add(phase)
    )
    assert {"users", "profiles", "conversations", "members"} <= phases
    assert len(credentials.users) == 20 and len({u.id for u in credentials.users}) == 20
    # 5 blocks of 4: 4 ring pairs and 1 group each.
    kinds = [c.kind for c in credentials.conversations]
    assert kinds.count("pair") == 20 and kinds.count("group") == 5
    assert all(len(c.members) == 4 for c in credentials.conversations if c.kind == "group")

    for user in credentials.users:
        session = sign_in(target, user.email, user.password)
        assert session.status_code == 200, session.text
        assert session.json()["user"]["id"] == user.id

    ids = [c.id for c in credentials.conversations]
    stored: dict[str, set[object]] = {}
    for row in rows(target, "conversation_members", select="conversation_id,user_id", conversation_id=in_(ids)):
        stored.setdefault(row["conversation_id"], set()).add(row["user_id"])
    assert stored == {c.id: set(c.members) for c in credentials.conversations}
    assert len(rows(target, "profiles", select="id", id=in_([u.id for u in credentials.users]))) == 20

    # A member can send into its conversation as itself (row-level access agrees with the memberships).
    first = credentials.users[0]
    token = sign_in(target, first.email, first.password).json()["access_token"]
    group = next(c for c in credentials.conversations_of(first.id) if c.kind == "group")
    message = Envelope("r1", first.id, 1, 1717243200.5, group.id)
    sent = httpx.post(
        f"{target.supabase_url}/rest/v1/messages",
        headers={"apikey": keys.ANON_KEY, "Authorization": f"Bearer {token}", "Prefer": "return=representation"},
        json=message.message_row(),
        timeout=10,
    )
    assert sent.status_code == 201, sent.text
    # The envelope survives the server's jsonb round trip.
    assert Envelope.from_record(rows(target, "messages", client_msg_id=f"eq.{message.client_msg_id}")[0]) == message

    path = tmp_path / "credentials.json"
    credentials.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert keys.SERVICE_ROLE_KEY not in text and keys.JWT_SECRET not in text
    assert json.loads(text)["target_url"] == target.supabase_url
    assert Credentials.load(path).to_json() == credentials.to_json()

    removed = cleanup(target, Credentials.load(path))
    assert (removed.users, removed.conversations) == (20, 25)
    assert rows(target, "conversations", select="id", id=in_(ids)) == []
    assert rows(target, "conversation_members", select="user_id", conversation_id=in_(ids)) == []
    assert rows(target, "messages", select="id", conversation_id=in_(ids)) == []
    assert rows(target, "profiles", select="id", id=in_([u.id for u in credentials.users])) == []
    assert sign_in(target, first.email, first.password).status_code == 400
    assert cleanup(target, credentials).users == 20  # repeatable: what is gone is skipped


def test_cleanup_by_prefix_removes_only_that_prefix(target: TargetConfig) -> None:
    mine = provision(target, 6, 3, prefix="gone", run_id="a")
    also_mine = provision(target, 2, 2, prefix="gone", run_id="b")
    kept = provision(target, 2, 2, prefix="gone-not", run_id="a")
    removed = cleanup(target, "gone")
    assert (removed.users, removed.conversations) == (8, len(mine.conversations) + len(also_mine.conversations))
    assert sign_in(target, kept.users[0].email, kept.users[0].password).status_code == 200
    assert len(rows(target, "conversations", select="id", id=in_([c.id for c in kept.conversations]))) == 1
    cleanup(target, kept)


def test_failed_provision_rolls_back_only_its_own_users(target: TargetConfig) -> None:
    first = provision(target, 4, 2, prefix="dup", run_id="r")
    with pytest.raises(ProvisionError, match=r"create user dup\.r\.\d@example\.com: HTTP 422 email_exists"):
        provision(target, 6, 2, prefix="dup", run_id="r")  # users 0-3 exist; 4 and 5 get created, then removed
    assert sign_in(target, first.users[0].email, first.users[0].password).status_code == 200
    listed = httpx.get(f"{target.supabase_url}/auth/v1/admin/users?per_page=1000", headers=SERVICE, timeout=10)
    emails = {u["email"] for u in listed.json()["users"]}
    assert "dup.r.4@example.com" not in emails and "dup.r.0@example.com" in emails
    cleanup(target, first)


def test_wrong_service_key_is_a_config_error_without_the_key(target: TargetConfig) -> None:
    wrong = keys.sign({"role": "service_role", "exp": 4102444800}, "another-secret-of-at-least-32-characters!")
    bad = TargetConfig(target.supabase_url, target.anon_key, Secret(wrong))
    with pytest.raises(ConfigError) as info:
        provision(bad, 2, 2, prefix="bad", run_id="r")
    assert str(info.value).endswith(
        "HTTP 401 Invalid authentication credentials; is SUPABASE_SERVICE_ROLE_KEY this project's service_role key?"
    )
    assert wrong not in str(info.value)
    not_admin = TargetConfig(target.supabase_url, target.anon_key, Secret(keys.ANON_KEY))
    with pytest.raises(ConfigError, match=r"HTTP 403 not_admin User not allowed; is SUPABASE_SERVICE_ROLE_KEY"):
        provision(not_admin, 2, 2, prefix="bad", run_id="r")
    no_key = TargetConfig(target.supabase_url, target.anon_key)
    with pytest.raises(ConfigError, match="SUPABASE_SERVICE_ROLE_KEY is not set"):
        cleanup(no_key, "bad")


def test_missing_profiles_are_created(target: TargetConfig) -> None:
    """A project without the sign-up trigger: provisioning inserts the profiles itself."""
    credentials = provision(target, 3, 3, prefix="noprofile", run_id="r")
    ids = in_([u.id for u in credentials.users])
    deleted = httpx.delete(f"{target.supabase_url}/rest/v1/profiles", headers=SERVICE, params={"id": ids}, timeout=10)
    assert deleted.status_code in (200, 204) and rows(target, "profiles", id=ids) == []
    admin = users._Admin(target, "test")
    try:
        users._ensure_profiles(admin, credentials.users, None)
    finally:
        admin.close()
    names = {row["display_name"] for row in rows(target, "profiles", select="display_name", id=ids)}
    assert names == {"noprofile.r.0", "noprofile.r.1", "noprofile.r.2"}
    cleanup(target, credentials)


def test_unreachable_target() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = TargetConfig.for_reference_stack(f"http://127.0.0.1:{port}")
    with pytest.raises(TargetUnreachable, match=rf"http://127.0.0.1:{port} did not answer"):
        provision(dead, 2, 2, prefix="x", run_id="r")


def test_bad_arguments_name_the_value(target: TargetConfig) -> None:
    with pytest.raises(ConfigError, match=r"prefix: 'Bad_Prefix' is not a valid tag; use 1-40 lowercase"):
        provision(target, 2, 2, prefix="Bad_Prefix", run_id="r")
    with pytest.raises(ConfigError, match="group size: 1 is too small"):
        provision(target, 2, 1, prefix="x", run_id="r")


def test_private_file_is_0600_even_when_replacing_a_readable_one(tmp_path: Path) -> None:
    path = tmp_path / "creds.json"
    path.write_text("old")
    os.chmod(path, 0o644)
    old_umask = os.umask(0)
    try:
        write_private(path, "new")
    finally:
        os.umask(old_umask)
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["creds.json"]


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="harness")
    users_cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_provision_and_cleanup(
    target: TargetConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "c.json"
    argv = ["users", "provision", "--count", "4", "--group-size", "2", "--prefix", "cli", "--run-id", "r"]
    assert run_cli([*argv, "--out", str(out), "--target-url", target.supabase_url]) == 0
    assert "4 users, 2 conversations" in capsys.readouterr().out
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    # The credentials file remembers its target: no URL needed to clean up.
    assert run_cli(["users", "cleanup", "--credentials", str(out)]) == 0
    assert "removed 4 users and 2 conversations" in capsys.readouterr().out


def test_cli_without_a_target_explains_how_to_name_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUPABASE_URL", raising=False)
    with pytest.raises(ConfigError) as info:
        run_cli(["users", "provision", "--count", "4"])
    message = str(info.value)
    assert message.startswith("no target: to provision against a deployment, set SUPABASE_URL and SUPABASE_ANON_KEY")
    assert "--env-file FILE" in message and "--target-url URL" in message


def test_cli_refuses_a_remote_target_without_confirmation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPABASE_URL", "https://abcdefgh.supabase.co")
    monkeypatch.setenv("SUPABASE_ANON_KEY", keys.ANON_KEY)
    monkeypatch.delenv("HARNESS_ALLOW_HOSTS", raising=False)
    with pytest.raises(ConfigError, match=r"is not a loopback address .* HARNESS_ALLOW_HOSTS"):
        run_cli(["users", "cleanup", "--prefix", "x"])
    with pytest.raises(SystemExit):
        run_cli(["users", "provision", "--count", "0"])


def _send(target: TargetConfig, token: str, conversation: str, sender: str, text: str) -> None:
    row = {"conversation_id": conversation, "sender_id": sender, "client_msg_id": uuid.uuid4().hex, "content": text}
    sent = httpx.post(f"{target.supabase_url}/rest/v1/messages", headers=user_headers(token), json=row, timeout=10)
    assert sent.status_code == 201, sent.text


def _files(client: SupabaseClient, folder: str, token: str | None = None) -> list[str]:
    listed = client.list_objects(folder, limit=100, token=token)
    assert listed.status_code == 200, listed.text
    return [entry["name"] for entry in listed.json()]


def test_cleanup_leaves_nothing_a_recreated_id_could_read(
    target: TargetConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14 item 3: `harness users cleanup` removes the users' messages, memberships, conversations (those of
    the credentials and those made during the run) and files; a user re-created with the same id reads nothing."""
    for name in ("SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    out, url = tmp_path / "c.json", target.supabase_url
    argv = ["users", "provision", "--count", "4", "--group-size", "2", "--prefix", "casc", "--run-id", "r"]
    assert run_cli([*argv, "--out", str(out), "--target-url", url]) == 0
    credentials = Credentials.load(out)
    ids = [u.id for u in credentials.users]
    tokens = {u.id: sign_in(target, u.email, u.password).json()["access_token"] for u in credentials.users}
    for conversation in credentials.conversations:
        for member in conversation.members:
            _send(target, tokens[member], conversation.id, member, "provisioned")
    first, second = ids[:2]
    during_run = create_conversation(url, tokens[first], [second])  # not in the credentials file
    _send(target, tokens[second], during_run, second, "during the run")
    outsider_id, outsider, _ = create_user(url, f"outsider-{uuid.uuid4().hex[:8]}@example.com")
    theirs = create_conversation(url, outsider, [first])  # someone else's conversation the user wrote in
    _send(target, tokens[first], theirs, first, "mine")
    _send(target, outsider, theirs, outsider_id, "theirs")
    storage = SupabaseClient(url, keys.ANON_KEY)
    service_storage = SupabaseClient(url, keys.SERVICE_ROLE_KEY)
    folders = [credentials.conversations[0].id, during_run]
    for folder in folders:
        uploaded = storage.upload(f"{folder}/photo.bin", b"x" * 1000, token=tokens[first])
        assert uploaded.status_code == 200, uploaded.text

    assert run_cli(["users", "cleanup", "--credentials", str(out)]) == 0
    conversations = [c.id for c in credentials.conversations] + [during_run]
    assert rows(target, "messages", select="id", sender_id=in_(ids)) == []
    assert rows(target, "messages", select="id", conversation_id=in_(conversations)) == []
    assert rows(target, "conversation_members", select="user_id", user_id=in_(ids)) == []
    assert rows(target, "conversations", select="id", id=in_(conversations)) == []
    assert rows(target, "conversations", select="id", created_by=in_(ids)) == []
    assert [_files(service_storage, folder) for folder in folders] == [[], []]
    kept = rows(target, "messages", select="content,sender_id", conversation_id=f"eq.{theirs}")
    assert kept == [{"content": "theirs", "sender_id": outsider_id}]  # the outsider keeps their own

    # GoTrue's admin create takes an id: the same id again is a new user that reads nothing of the old one.
    email, password = f"recreated-{uuid.uuid4().hex[:8]}@example.com", "correct-horse-battery"
    recreated = httpx.post(
        f"{url}/auth/v1/admin/users",
        headers=SERVICE,
        json={"id": first, "email": email, "password": password, "email_confirm": True},
        timeout=10,
    )
    assert (recreated.status_code, recreated.json()["id"]) == (200, first), recreated.text
    token = sign_in(target, email, password).json()["access_token"]
    for table in ("messages", "conversations", "conversation_members"):
        seen = httpx.get(f"{url}/rest/v1/{table}", headers=user_headers(token), timeout=10)
        assert (seen.status_code, seen.json()) == (200, []), table
    assert [_files(storage, folder, token) for folder in folders] == [[], []]
    for user in (first, outsider_id):
        assert httpx.delete(f"{url}/auth/v1/admin/users/{user}", headers=SERVICE, timeout=10).status_code == 200


def test_admin_create_refuses_a_bad_or_taken_id(target: TargetConfig) -> None:
    url = f"{target.supabase_url}/auth/v1/admin/users"
    taken = create_user(target.supabase_url)[0]
    cases = [
        ("not-a-uuid", 400, "validation_failed", "ID must conform to the uuid v4 format"),
        ("00000000-0000-0000-0000-000000000000", 400, "validation_failed", "ID cannot be a nil uuid"),
        (taken, 422, "user_already_exists", "A user with this ID has already been registered"),
    ]
    for given, status, code, message in cases:
        body = {"id": given, "email": f"id-{uuid.uuid4().hex[:8]}@example.com", "password": "correct-horse-battery"}
        response = httpx.post(url, headers=SERVICE, json=body, timeout=10)
        assert (response.status_code, response.json()["error_code"], response.json()["msg"]) == (
            status,
            code,
            message,
        ), response.text
