"""Row-level security through every verb, the upsert takeover of issue 11, cascades, and JWT roles the
authenticator cannot become. Each test makes its own users, so they share one region without seeing each other."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from tests.refstack.region.conftest import SERVICE_HEADERS as SERVICE
from tests.refstack.region.conftest import create_conversation, create_user, run_sql, user_headers


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    config = RegionConfig(data_dir=tmp_path_factory.mktemp("region"), bcrypt_cost=4)
    with background(lambda: build_app(config)) as server:
        yield server


@pytest.fixture
def trio(region: BackgroundServer) -> dict[str, Any]:
    """Alice created a conversation with Bob and wrote in it; Mallory is signed in and a member of nothing."""
    users = {name: create_user(region.url) for name in ("alice", "bob", "mallory")}
    conversation = create_conversation(region.url, users["alice"][1], [users["bob"][0]])
    titled = _rest(region, users["alice"][1], "PATCH", f"conversations?id=eq.{conversation}", json={"title": "ours"})
    assert titled.status_code == 204
    message = {"conversation_id": conversation, "sender_id": users["alice"][0], "client_msg_id": "a1", "content": "hi"}
    assert _rest(region, users["alice"][1], "POST", "messages", json=message).status_code == 201
    return {"conv": conversation, **{f"{n}_id": u[0] for n, u in users.items()}, **{n: u[1] for n, u in users.items()}}


def _rest(region: BackgroundServer, token: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {**(SERVICE if token is None else user_headers(token)), **kw.pop("headers", {})}
    return httpx.request(method, f"{region.url}/rest/v1/{path}", headers=headers, timeout=10, **kw)


def _conversation(region: BackgroundServer, conversation: str) -> dict[str, Any]:
    rows = _rest(region, None, "GET", f"conversations?id=eq.{conversation}").json()
    assert len(rows) == 1
    return dict(rows[0])


# -- the upsert takeover (issue 11) ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "prefer"),
    [
        ("on_conflict=id", "resolution=merge-duplicates"),
        ("on_conflict=id", "resolution=merge-duplicates,return=representation"),
        ("", "resolution=merge-duplicates"),  # the primary key is the default conflict target
        ("on_conflict=id&columns=id,title,created_by", "resolution=merge-duplicates,missing=default"),
    ],
)
def test_upsert_cannot_take_over_another_users_conversation(
    region: BackgroundServer, trio: dict[str, Any], query: str, prefer: str
) -> None:
    before = _conversation(region, trio["conv"])
    attack = {"id": trio["conv"], "title": "pwned", "created_by": trio["mallory_id"]}
    response = _rest(region, trio["mallory"], "POST", f"conversations?{query}", json=attack, headers={"Prefer": prefer})
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "42501"
    assert _conversation(region, trio["conv"]) == before
    assert _rest(region, trio["mallory"], "GET", "conversations").json() == []


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("on_conflict=created_by", 400),  # no unique constraint on the column: Postgres's 42P10
        ("on_conflict=title&columns=title,created_by", 400),
        ("on_conflict=id&columns=title,created_by", 201),  # the id is not inserted: a new conversation of Mallory's
    ],
)
def test_upsert_on_a_column_absent_from_the_body_takes_nothing_over(
    region: BackgroundServer, trio: dict[str, Any], query: str, status: int
) -> None:
    before = _conversation(region, trio["conv"])
    attack = {"id": trio["conv"], "title": "pwned", "created_by": trio["mallory_id"]}
    prefer = {"Prefer": "resolution=merge-duplicates"}
    response = _rest(region, trio["mallory"], "POST", f"conversations?{query}", json=attack, headers=prefer)
    assert response.status_code == status, response.text
    assert _conversation(region, trio["conv"]) == before
    mine = _rest(region, trio["mallory"], "GET", "conversations?select=id,title,created_by").json()
    assert all(row["id"] != trio["conv"] for row in mine)


def test_upsert_ignore_duplicates_changes_nothing(region: BackgroundServer, trio: dict[str, Any]) -> None:
    before = _conversation(region, trio["conv"])
    attack = {"id": trio["conv"], "title": "pwned", "created_by": trio["mallory_id"]}
    prefer = {"Prefer": "resolution=ignore-duplicates,return=representation"}
    response = _rest(region, trio["mallory"], "POST", "conversations?on_conflict=id", json=attack, headers=prefer)
    assert (response.status_code, response.json()) == (201, [])
    assert _conversation(region, trio["conv"]) == before


def test_upsert_passes_the_insert_and_the_update_policy(region: BackgroundServer, trio: dict[str, Any]) -> None:
    """Postgres checks the INSERT policy on the proposed row even when it conflicts, then the UPDATE policy."""
    prefer = {"Prefer": "resolution=merge-duplicates,return=representation"}
    as_bob = {"id": trio["conv"], "title": "renamed by bob"}  # a member, but created_by is not his
    refused = _rest(region, trio["bob"], "POST", "conversations?on_conflict=id", json=as_bob, headers=prefer)
    assert refused.status_code == 403, refused.text
    as_alice = {"id": trio["conv"], "title": "renamed by alice", "created_by": trio["alice_id"]}
    response = _rest(region, trio["alice"], "POST", "conversations?on_conflict=id", json=as_alice, headers=prefer)
    assert response.status_code == 201, response.text
    assert response.json()[0]["title"] == "renamed by alice"
    assert _conversation(region, trio["conv"])["title"] == "renamed by alice"


def _rows(region: BackgroundServer, path: str) -> list[dict[str, Any]]:
    response = _rest(region, None, "GET", path)
    assert response.status_code == 200, response.text
    return list(response.json())


@pytest.fixture
def mallorys_own(region: BackgroundServer, trio: dict[str, Any]) -> str:
    """A conversation of Mallory's own, so her upserts pass the INSERT policy and reach the UPDATE one."""
    return create_conversation(region.url, trio["mallory"], [])


# Issue 14 item 2: the same takeover on messages and memberships, with every way of naming the conflict target.
# Postgres applies the INSERT policy to the proposed row and the UPDATE policy to the row it conflicts with, so
# these hold by construction; they guard against a region that would skip either.
@pytest.mark.parametrize(
    ("who", "query", "attack", "status", "code"),
    [
        ("mallory", "on_conflict=id", "own_conversation", 403, "42501"),  # INSERT passes; she cannot see the row
        ("mallory", "", "own_conversation", 403, "42501"),  # the primary key is the default target
        ("mallory", "on_conflict=sender_id,client_msg_id", "as_alice", 403, "42501"),  # not her sender_id
        ("mallory", "on_conflict=id&columns=id,content", "as_alice", 403, "42501"),  # sender_id absent: NULL fails
        ("mallory", "on_conflict=client_msg_id", "own_conversation", 400, "42P10"),  # not unique alone
        ("mallory", "on_conflict=conversation_id", "own_conversation", 400, "42P10"),
        # Bob reads the message and passes the INSERT policy as himself; the UPDATE policy (sender only) refuses.
        ("bob", "on_conflict=id", "as_self", 403, "42501"),
        ("bob", "", "as_self", 403, "42501"),
    ],
)
def test_upsert_cannot_take_over_another_users_message(
    region: BackgroundServer,
    trio: dict[str, Any],
    mallorys_own: str,
    who: str,
    query: str,
    attack: str,
    status: int,
    code: str,
) -> None:
    path = f"messages?conversation_id=eq.{trio['conv']}"
    before = _rows(region, path)
    (message,) = before
    body = {"id": message["id"], "client_msg_id": "a1", "content": "pwned"}
    if attack == "own_conversation":
        body |= {"conversation_id": mallorys_own, "sender_id": trio["mallory_id"]}
    elif attack == "as_self":
        body |= {"conversation_id": trio["conv"], "sender_id": trio[f"{who}_id"]}
    else:
        body |= {"conversation_id": trio["conv"], "sender_id": trio["alice_id"]}
    prefer = {"Prefer": "resolution=merge-duplicates,return=representation"}
    response = _rest(region, trio[who], "POST", f"messages?{query}", json=body, headers=prefer)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert _rows(region, path) == before
    assert _rest(region, trio["bob"], "GET", path).json()[0]["content"] == "hi"  # a member still reads it
    assert _rest(region, trio["mallory"], "GET", f"messages?id=eq.{message['id']}").json() == []


def test_upsert_on_an_id_absent_from_the_body_makes_a_new_message(
    region: BackgroundServer, trio: dict[str, Any], mallorys_own: str
) -> None:
    """on_conflict=id with no id in the body: the default id never conflicts, so the row is Mallory's own."""
    path = f"messages?conversation_id=eq.{trio['conv']}"
    before = _rows(region, path)
    body = {"conversation_id": mallorys_own, "sender_id": trio["mallory_id"], "client_msg_id": "a1", "content": "x"}
    prefer = {"Prefer": "resolution=merge-duplicates,return=representation"}
    response = _rest(region, trio["mallory"], "POST", "messages?on_conflict=id", json=body, headers=prefer)
    assert response.status_code == 201, response.text
    assert response.json()[0]["conversation_id"] == mallorys_own and response.json()[0]["id"] != before[0]["id"]
    assert _rows(region, path) == before


@pytest.mark.parametrize(
    ("who", "query", "row", "status", "code"),
    [
        ("mallory", "", {"user_id": "mallory", "role": "owner"}, 403, "42501"),  # join someone's conversation
        ("mallory", "on_conflict=conversation_id,user_id", {"user_id": "alice", "role": "member"}, 403, "42501"),
        # A member passes the INSERT policy, but only the creator may UPDATE memberships: demoting Alice fails.
        ("bob", "on_conflict=conversation_id,user_id", {"user_id": "alice", "role": "member"}, 403, "42501"),
        ("bob", "", {"user_id": "bob", "role": "owner"}, 403, "42501"),  # nor may Bob promote himself
        ("mallory", "on_conflict=user_id", {"user_id": "alice", "role": "member"}, 400, "42P10"),
        # columns= leaves conversation_id out of the row: NULL fails the INSERT policy before any conflict.
        ("mallory", "on_conflict=conversation_id,user_id&columns=user_id,role", {"user_id": "alice", "role": "x"},
         403, "42501"),
    ],
)  # fmt: skip
def test_upsert_cannot_take_over_a_membership(
    region: BackgroundServer,
    trio: dict[str, Any],
    who: str,
    query: str,
    row: dict[str, str],
    status: int,
    code: str,
) -> None:
    path = f"conversation_members?conversation_id=eq.{trio['conv']}&order=user_id"
    before = _rows(region, path)
    assert {m["user_id"]: m["role"] for m in before} == {trio["alice_id"]: "owner", trio["bob_id"]: "member"}
    body = {"conversation_id": trio["conv"], "user_id": trio[f"{row['user_id']}_id"], "role": row["role"]}
    prefer = {"Prefer": "resolution=merge-duplicates"}
    response = _rest(region, trio[who], "POST", f"conversation_members?{query}", json=body, headers=prefer)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert _rows(region, path) == before
    assert _rest(region, trio["mallory"], "GET", f"messages?conversation_id=eq.{trio['conv']}").json() == []


# -- every verb as an outsider ------------------------------------------------------------------------------------
def test_outsider_reads_counts_updates_and_deletes_nothing(region: BackgroundServer, trio: dict[str, Any]) -> None:
    outsider = trio["mallory"]
    path = f"messages?conversation_id=eq.{trio['conv']}"
    exact = {"Prefer": "count=exact"}
    assert _rest(region, outsider, "GET", path, headers=exact).headers["Content-Range"] == "*/0"
    head = _rest(region, outsider, "HEAD", path, headers=exact)
    assert (head.status_code, head.headers["Content-Range"]) == (200, "*/0")
    both = {"Prefer": "count=exact,return=representation"}
    patched = _rest(region, outsider, "PATCH", path, json={"content": "x"}, headers=both)
    assert (patched.status_code, patched.json(), patched.headers["Content-Range"]) == (200, [], "*/0")
    deleted = _rest(region, outsider, "DELETE", path, headers=exact)
    assert (deleted.status_code, deleted.headers["Content-Range"]) == (204, "*/0")
    row = {"conversation_id": trio["conv"], "sender_id": trio["mallory_id"], "client_msg_id": "m"}
    assert _rest(region, outsider, "POST", "messages", json=row).status_code == 403
    assert _rest(region, trio["bob"], "GET", path).json()[0]["content"] == "hi"


def test_anon_is_401_and_service_role_bypasses(region: BackgroundServer, trio: dict[str, Any]) -> None:
    anon = {"apikey": keys.ANON_KEY}
    insert = httpx.post(f"{region.url}/rest/v1/conversations", headers=anon, json={"title": "x"})
    assert (insert.status_code, insert.json()["code"]) == (401, "42501")
    assert insert.headers["WWW-Authenticate"] == "Bearer"
    assert httpx.get(f"{region.url}/rest/v1/messages", headers=anon).json() == []
    assert len(_rest(region, None, "GET", f"messages?conversation_id=eq.{trio['conv']}").json()) == 1


@pytest.mark.parametrize(
    ("role", "status", "code"),
    [
        ("postgres", 403, "42501"),  # exists, but the authenticator may not become it
        ("supabase_admin", 403, "42501"),
        ("no_such_role", 401, "22023"),  # PostgREST answers a role that does not exist with 401
    ],
)
def test_a_jwt_role_the_authenticator_cannot_become(
    region: BackgroundServer, role: str, status: int, code: str
) -> None:
    token = keys.sign({"role": role, "exp": 2**31 - 1})
    response = _rest(region, token, "GET", "messages")
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert role in response.json()["message"]


# -- cascades --------------------------------------------------------------------------------------------------------
def _count(region: BackgroundServer, path: str) -> int:
    response = _rest(region, None, "HEAD", path, headers={"Prefer": "count=exact"})
    return int(response.headers["Content-Range"].rsplit("/", 1)[1])


def test_deleting_a_conversation_removes_its_messages_and_members(
    region: BackgroundServer, trio: dict[str, Any]
) -> None:
    conv = trio["conv"]
    assert (
        _count(region, f"messages?conversation_id=eq.{conv}"),
        _count(region, f"conversation_members?conversation_id=eq.{conv}"),
    ) == (1, 2)
    assert _rest(region, trio["bob"], "DELETE", f"conversations?id=eq.{conv}").status_code == 204  # not the creator
    assert _count(region, f"conversations?id=eq.{conv}") == 1
    assert _rest(region, trio["alice"], "DELETE", f"conversations?id=eq.{conv}").status_code == 204
    assert _count(region, f"messages?conversation_id=eq.{conv}") == 0
    assert _count(region, f"conversation_members?conversation_id=eq.{conv}") == 0
    # The same id again is a new conversation: nothing of the old one comes back.
    again = _rest(region, trio["alice"], "POST", "conversations", json={"id": conv, "created_by": trio["alice_id"]})
    assert again.status_code == 201
    member = {"conversation_id": conv, "user_id": trio["alice_id"], "role": "owner"}
    assert _rest(region, trio["alice"], "POST", "conversation_members", json=member).status_code == 201
    assert _rest(region, trio["alice"], "GET", f"messages?conversation_id=eq.{conv}").json() == []
    members = _rest(region, trio["alice"], "GET", f"conversation_members?conversation_id=eq.{conv}").json()
    assert [m["user_id"] for m in members] == [trio["alice_id"]]
    assert _rest(region, trio["bob"], "GET", f"conversations?id=eq.{conv}").json() == []


def test_deleting_a_user_removes_their_profile_messages_and_memberships(
    region: BackgroundServer, trio: dict[str, Any]
) -> None:
    alice = trio["alice_id"]
    assert _count(region, f"messages?sender_id=eq.{alice}") == 1
    deleted = httpx.delete(f"{region.url}/auth/v1/admin/users/{alice}", headers=SERVICE, timeout=10)
    assert deleted.status_code == 200, deleted.text
    assert _count(region, f"profiles?id=eq.{alice}") == 0
    assert _count(region, f"messages?sender_id=eq.{alice}") == 0
    assert _count(region, f"conversation_members?user_id=eq.{alice}") == 0
    conversation = _conversation(region, trio["conv"])  # on delete set null: the conversation stays, Bob keeps it
    assert conversation["created_by"] is None
    assert _rest(region, trio["bob"], "GET", "messages").json() == []


# -- the schema cache across a promotion -----------------------------------------------------------------------------
def _ddl(server: BackgroundServer, statement: str) -> None:
    run_sql(server.url, statement)


def _eventually(call: Any, expected: int, timeout_s: float = 5.0) -> httpx.Response:
    import time

    deadline = time.monotonic() + timeout_s
    while (response := call()).status_code != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return response


def test_a_replica_serves_its_primarys_schema_and_follows_ddl_once_promoted(
    region: BackgroundServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _ddl(region, "create function public.before_copy() returns int language sql immutable as 'select 1'")
    assert _eventually(lambda: _rest(region, None, "GET", "rpc/before_copy"), 200).json() == 1
    config = RegionConfig(
        region="ap-northeast-1",
        data_dir=tmp_path_factory.mktemp("replica"),
        role="replica",
        primary_url=region.url,
        bcrypt_cost=4,
    )
    with background(lambda: build_app(config)) as replica:
        assert _rest(replica, None, "GET", "rpc/before_copy").json() == 1
        assert httpx.post(f"{replica.url}/_admin/promote", headers=SERVICE, timeout=30).status_code == 200
        _ddl(replica, "create function public.after_promotion() returns int language sql immutable as 'select 2'")
        response = _eventually(lambda: _rest(replica, None, "GET", "rpc/after_promotion"), 200)
        assert (response.status_code, response.json()) == (200, 2)
