"""Row-level access through /rest/v1: anon sees nothing, non-members are shut out, service role bypasses, and bad
tokens are refused before any rule runs."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from harness.model import keys
from harness.procs.serving import BackgroundServer
from harness.refstack.region.rest.schema_cache import SchemaCache, load
from tests.refstack.region.conftest import MakeConversation, MakeUser, anon_headers, postgres_dsn, user_headers


@pytest.fixture
def trio(region: BackgroundServer, make_user: MakeUser, make_conversation: MakeConversation) -> dict[str, Any]:
    """Alice and Bob share a conversation with one message; Mallory is signed in but not a member."""
    alice, alice_token, _ = make_user()
    bob, bob_token, _ = make_user()
    mallory, mallory_token, _ = make_user()
    conversation = make_conversation(alice_token, [bob])
    message = {"conversation_id": conversation, "sender_id": alice, "client_msg_id": "a1", "content": "secret"}
    assert (
        httpx.post(f"{region.url}/rest/v1/messages", headers=user_headers(alice_token), json=message).status_code == 201
    )
    return {
        "alice": (alice, alice_token),
        "bob": (bob, bob_token),
        "mallory": (mallory, mallory_token),
        "conv": conversation,
    }


def _get(region: BackgroundServer, headers: dict[str, str], path: str) -> httpx.Response:
    return httpx.get(f"{region.url}/rest/v1/{path}", headers=headers)


def test_anon_reads_and_writes_no_messages(region: BackgroundServer, trio: dict[str, Any]) -> None:
    assert _get(region, anon_headers(), "messages").json() == []
    # Without Authorization, Kong makes the apikey the bearer: still anon.
    assert _get(region, {"apikey": keys.ANON_KEY}, "messages").json() == []
    row = {"conversation_id": trio["conv"], "sender_id": trio["alice"][0], "client_msg_id": "anon"}
    response = httpx.post(f"{region.url}/rest/v1/messages", headers=anon_headers(), json=row)
    assert response.status_code == 401 and response.json()["code"] == "42501"


def test_non_member_cannot_read_or_write_the_conversation(region: BackgroundServer, trio: dict[str, Any]) -> None:
    mallory, token = trio["mallory"]
    headers = user_headers(token)
    for table, column in (("messages", "conversation_id"), ("conversation_members", "conversation_id")):
        assert _get(region, headers, f"{table}?{column}=eq.{trio['conv']}").json() == []
    assert _get(region, headers, f"conversations?id=eq.{trio['conv']}").json() == []
    row = {"conversation_id": trio["conv"], "sender_id": mallory, "client_msg_id": "m1"}
    post = httpx.post(f"{region.url}/rest/v1/messages", headers=headers, json=row)
    assert post.status_code == 403 and post.json()["code"] == "42501"
    join = {"conversation_id": trio["conv"], "user_id": mallory}
    assert httpx.post(f"{region.url}/rest/v1/conversation_members", headers=headers, json=join).status_code == 403
    patch = httpx.patch(
        f"{region.url}/rest/v1/messages?conversation_id=eq.{trio['conv']}",
        headers={**headers, "Prefer": "return=representation"},
        json={"content": "pwned"},
    )
    assert patch.status_code == 200 and patch.json() == []


def test_member_cannot_send_as_someone_else_or_edit_others(region: BackgroundServer, trio: dict[str, Any]) -> None:
    _, bob_token = trio["bob"]
    forged = {"conversation_id": trio["conv"], "sender_id": trio["alice"][0], "client_msg_id": "forged"}
    response = httpx.post(f"{region.url}/rest/v1/messages", headers=user_headers(bob_token), json=forged)
    assert response.status_code == 403
    deleted = httpx.delete(
        f"{region.url}/rest/v1/messages?client_msg_id=eq.a1",
        headers={**user_headers(bob_token), "Prefer": "return=representation"},
    )
    assert deleted.json() == []
    assert len(_get(region, user_headers(bob_token), "messages").json()) == 1


def test_upsert_cannot_overwrite_another_users_row(region: BackgroundServer, trio: dict[str, Any]) -> None:
    _, bob_token = trio["bob"]
    alice_id = trio["alice"][0]
    response = httpx.post(
        f"{region.url}/rest/v1/profiles?on_conflict=id",
        headers={**user_headers(bob_token), "Prefer": "resolution=merge-duplicates"},
        json={"id": alice_id, "status": "hacked"},
    )
    assert response.status_code == 403
    profile = _get(region, user_headers(bob_token), f"profiles?id=eq.{alice_id}").json()[0]
    assert profile["status"] is None


def test_profiles_are_readable_by_users_writable_only_by_their_owner(
    region: BackgroundServer, trio: dict[str, Any]
) -> None:
    mallory, token = trio["mallory"]
    assert len(_get(region, user_headers(token), "profiles").json()) == 3
    patch = httpx.patch(
        f"{region.url}/rest/v1/profiles",
        headers={**user_headers(token), "Prefer": "return=representation"},
        json={"status": "here"},
    )
    assert [r["id"] for r in patch.json()] == [mallory]


def test_service_role_bypasses(region: BackgroundServer, trio: dict[str, Any], service_headers: dict[str, str]) -> None:
    assert len(_get(region, service_headers, f"messages?conversation_id=eq.{trio['conv']}").json()) == 1
    assert len(_get(region, service_headers, "conversation_members").json()) == 2


@pytest.mark.parametrize(
    "token",
    [
        keys.sign(
            {"sub": "00000000-0000-0000-0000-000000000001", "role": "authenticated", "exp": int(time.time()) - 10}
        ),
        keys.sign({"sub": "00000000-0000-0000-0000-000000000001", "role": "authenticated", "exp": 2**31}, "w" * 40),
        "not-a-jwt",
        keys.sign({"sub": "00000000-0000-0000-0000-000000000001", "role": "authenticated"}),
    ],
    ids=["expired", "wrong-signature", "malformed", "no-exp"],
)
def test_bad_tokens_are_401_pgrst301(region: BackgroundServer, trio: dict[str, Any], token: str) -> None:
    response = _get(region, user_headers(token), "messages")
    assert response.status_code == 401
    assert response.json()["code"] == "PGRST301"


def test_missing_apikey_is_refused_by_the_gateway(region: BackgroundServer, trio: dict[str, Any]) -> None:
    response = httpx.get(f"{region.url}/rest/v1/messages", headers={"Authorization": f"Bearer {trio['bob'][1]}"})
    assert response.status_code == 401 and response.json() == {"message": "No API key found in request"}


def test_leaving_a_conversation_removes_access(region: BackgroundServer, trio: dict[str, Any]) -> None:
    bob, token = trio["bob"]
    left = httpx.delete(f"{region.url}/rest/v1/conversation_members?user_id=eq.{bob}", headers=user_headers(token))
    assert left.status_code == 204
    assert _get(region, user_headers(token), "messages").json() == []


MIGRATIONS = Path(__file__).resolve().parents[3] / "supabase" / "migrations"


def _migration_tables(sql: str) -> dict[str, set[str]]:
    """Loosely parse `create table … public.<name> ( <column> <type> …, … );` blocks."""
    tables: dict[str, set[str]] = {}
    for match in re.finditer(r"create table if not exists public\.(\w+) \((.*?)\n\);", sql, re.S):
        columns = set()
        for line in match.group(2).splitlines():
            word = line.strip().split(" ", 1)[0]
            if word and word not in ("primary", "constraint", "unique", "--"):
                columns.add(word)
        tables[match.group(1)] = columns
    return tables


def _schema_cache(region: BackgroundServer) -> SchemaCache:
    """The REST module's view of the running region's database, read from pg_catalog as it reads it at start."""
    dsn = postgres_dsn(region.url)

    async def read() -> SchemaCache:
        conn = await asyncpg.connect(dsn)
        try:
            return await load(conn)
        finally:
            await conn.close()

    return asyncio.run(read())


def test_migration_names_every_table_column_policy_and_publication(region: BackgroundServer) -> None:
    (path,) = MIGRATIONS.glob("*_whatsapp_clone.sql")
    sql = path.read_text()
    tables = _migration_tables(sql)
    cache = _schema_cache(region)
    assert set(tables) == set(cache.tables)
    for name, table in cache.tables.items():
        assert tables[name] == set(table.columns), name
        assert f"alter table public.{name} enable row level security" in sql
        assert f"public.{name}" in sql.split("alter publication supabase_realtime", 1)[1]
    assert "unique (sender_id, client_msg_id)" in sql
    assert ("sender_id", "client_msg_id") in cache.tables["messages"].unique
    assert {(fk.table, fk.ref_table) for fk in cache.foreign_keys} == {
        ("messages", "conversations"),
        ("conversation_members", "conversations"),
    }
    assert "insert into storage.buckets" in sql and "'attachments'" in sql
    assert sql.count("on storage.objects") == 3
