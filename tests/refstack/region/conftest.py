"""Shared fixtures for region-server tests: a running server on port 0, and users and conversations made through
its own APIs (admin user API + password grant, PostgREST), exactly as a client would.

    region              BackgroundServer serving build_app(RegionConfig(data_dir=tmp_path, bcrypt_cost=4))
    service_headers     headers of the service role (apikey + Authorization)
    make_user(email=None) -> (user_id, access_token, refresh_token)
    make_conversation(owner_token, member_ids) -> conversation id (the owner is always a member)
    region_sql(query, *args) -> rows of a query run on the region's PostgreSQL as its superuser (for asserting
                                what the database holds, and for setting up rows without another API)
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig

PASSWORD = "correct-horse-battery"
TEST_BCRYPT_COST = 4
"""bcrypt's minimum cost (about 1 ms a hash): tests sign in often; RegionConfig defaults to 10 (GoTrue's)."""
_emails = itertools.count(1)

MakeUser = Callable[..., tuple[str, str, str]]
MakeConversation = Callable[[str, list[str]], str]
RegionSql = Callable[..., list[asyncpg.Record]]


def user_headers(token: str) -> dict[str, str]:
    return {"apikey": keys.ANON_KEY, "Authorization": f"Bearer {token}"}


def anon_headers() -> dict[str, str]:
    return {"apikey": keys.ANON_KEY, "Authorization": f"Bearer {keys.ANON_KEY}"}


def user_id_of(token: str) -> str:
    sub = jwt.decode(token, options={"verify_signature": False})["sub"]
    assert isinstance(sub, str)
    return sub


@pytest.fixture
def region_data_dir(tmp_path: Path) -> Path:
    return tmp_path / "region"


@pytest.fixture
def region(region_data_dir: Path) -> Iterator[BackgroundServer]:
    with background(lambda: build_app(RegionConfig(data_dir=region_data_dir, bcrypt_cost=TEST_BCRYPT_COST))) as server:
        yield server


SERVICE_HEADERS = {"apikey": keys.SERVICE_ROLE_KEY, "Authorization": f"Bearer {keys.SERVICE_ROLE_KEY}"}


@pytest.fixture
def service_headers() -> dict[str, str]:
    return dict(SERVICE_HEADERS)


def wait_until(predicate: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    """Poll `predicate` every 10 ms until it returns something truthy (returned); AssertionError at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"condition not met within {timeout_s} s")


def postgres_dsn(base_url: str) -> str:
    """The PostgreSQL of the region at `base_url`, as its superuser (asked of its /_admin/postgres)."""
    where = httpx.get(f"{base_url}/_admin/postgres", headers=SERVICE_HEADERS, timeout=10)
    assert where.status_code == 200, where.text
    address = where.json()
    return f"postgresql://supabase_admin@{address['host']}:{address['port']}/postgres"


def create_user(base_url: str, email: str | None = None) -> tuple[str, str, str]:
    """A confirmed user made through the admin API, signed in with the password grant: (id, access, refresh)."""
    email = email or f"user{next(_emails)}@example.com"
    service = {"apikey": keys.SERVICE_ROLE_KEY, "Authorization": f"Bearer {keys.SERVICE_ROLE_KEY}"}
    created = httpx.post(
        f"{base_url}/auth/v1/admin/users",
        headers=service,
        json={"email": email, "password": PASSWORD, "email_confirm": True},
        timeout=10,
    )
    assert created.status_code == 200, created.text
    session = httpx.post(
        f"{base_url}/auth/v1/token?grant_type=password",
        headers={"apikey": keys.ANON_KEY},
        json={"email": email, "password": PASSWORD},
        timeout=10,
    )
    assert session.status_code == 200, session.text
    body = session.json()
    return created.json()["id"], body["access_token"], body["refresh_token"]


def create_conversation(base_url: str, owner_token: str, member_ids: list[str]) -> str:
    """A conversation created by the token's user through PostgREST, with the owner and `member_ids` as members."""
    owner = user_id_of(owner_token)
    headers = {**user_headers(owner_token), "Prefer": "return=representation"}
    created = httpx.post(
        f"{base_url}/rest/v1/conversations",
        headers=headers,
        json={"created_by": owner, "is_group": len(member_ids) > 1},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    conversation_id = created.json()[0]["id"]
    members = [{"conversation_id": conversation_id, "user_id": owner, "role": "owner"}]
    members += [{"conversation_id": conversation_id, "user_id": m, "role": "member"} for m in member_ids if m != owner]
    # return=minimal: Postgres applies the SELECT policy to RETURNING rows, and the owner's membership is not yet
    # visible to that policy inside its own INSERT (the same statement's snapshot), as on a real Supabase project.
    added = httpx.post(
        f"{base_url}/rest/v1/conversation_members", headers=user_headers(owner_token), json=members, timeout=10
    )
    assert added.status_code == 201, added.text
    return str(conversation_id)


@pytest.fixture
def make_user(region: BackgroundServer) -> MakeUser:
    return lambda email=None: create_user(region.url, email)


@pytest.fixture
def make_conversation(region: BackgroundServer) -> MakeConversation:
    return lambda owner_token, member_ids: create_conversation(region.url, owner_token, member_ids)


def run_sql(base_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """`query` on the PostgreSQL of the region at `base_url` (asked of its /_admin/postgres), as supabase_admin."""
    dsn = postgres_dsn(base_url)

    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(fetch())


@pytest.fixture
def region_sql(region: BackgroundServer) -> RegionSql:
    return lambda query, *args: run_sql(region.url, query, *args)
