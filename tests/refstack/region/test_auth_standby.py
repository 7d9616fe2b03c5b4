"""GoTrue on a read replica (a hot standby of the primary's PostgreSQL): tokens and /user read and work; sign-up,
sign-in, refresh and logout need writes and answer a clear 503 in GoTrue's shape when they reach it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from tests.refstack.region.conftest import PASSWORD, TEST_BCRYPT_COST, create_user, run_sql

VERSION = {"X-Supabase-Api-Version": "2024-01-01", "apikey": keys.ANON_KEY}
LEGACY = {"apikey": keys.ANON_KEY}


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[BackgroundServer, BackgroundServer]]:
    primary_config = RegionConfig(data_dir=tmp_path / "primary", bcrypt_cost=TEST_BCRYPT_COST)
    with background(lambda: build_app(primary_config)) as primary:
        replica_config = RegionConfig(
            region="ap-northeast-1",
            role="replica",
            primary_url=primary.url,
            data_dir=tmp_path / "replica",
            bcrypt_cost=TEST_BCRYPT_COST,
        )
        with background(lambda: build_app(replica_config)) as replica:
            yield primary, replica


def _replicated_user(primary: str, replica: str, email: str) -> tuple[str, str, str]:
    """A user made on the primary, once the standby has replayed it (GET /user answers there)."""
    user_id, access, refresh = create_user(primary, email)
    deadline = time.monotonic() + 10
    bearer = {**VERSION, "Authorization": f"Bearer {access}"}
    while httpx.get(f"{replica}/auth/v1/user", headers=bearer).status_code != 200:
        assert time.monotonic() < deadline, "the standby never replayed the user"
        time.sleep(0.02)
    return user_id, access, refresh


def test_reads_work_and_writes_answer_a_clear_error_on_a_standby(
    pair: tuple[BackgroundServer, BackgroundServer],
) -> None:
    primary, replica = pair
    user_id, access, refresh = _replicated_user(primary.url, replica.url, "sam@example.com")
    bearer = {**VERSION, "Authorization": f"Bearer {access}"}
    me = httpx.get(f"{replica.url}/auth/v1/user", headers=bearer)
    assert me.json()["id"] == user_id and me.json()["identities"][0]["provider"] == "email"
    service = {**VERSION, "Authorization": f"Bearer {keys.SERVICE_ROLE_KEY}", "apikey": keys.SERVICE_ROLE_KEY}
    assert httpx.get(f"{replica.url}/auth/v1/admin/users/{user_id}", headers=service).status_code == 200

    writes = [
        ("/auth/v1/token?grant_type=password", {"email": "sam@example.com", "password": PASSWORD}, VERSION),
        ("/auth/v1/token?grant_type=refresh_token", {"refresh_token": refresh}, VERSION),
        ("/auth/v1/signup", {"email": "new@example.com", "password": PASSWORD}, VERSION),
        ("/auth/v1/logout", None, bearer),
    ]
    for path, body, headers in writes:
        response = httpx.post(f"{replica.url}{path}", headers=headers, json=body)
        assert response.status_code == 503, (path, response.text)
        assert response.json()["code"] == "unexpected_failure", path
        assert "read-only replica" in response.json()["message"] and "primary region" in response.json()["message"]

    legacy = httpx.post(
        f"{replica.url}/auth/v1/token?grant_type=password",
        headers=LEGACY,
        json={"email": "sam@example.com", "password": PASSWORD},
    )
    assert legacy.status_code == 503 and legacy.json()["error_code"] == "unexpected_failure"
    assert legacy.json()["code"] == 503 and "read-only" in legacy.json()["msg"]

    # Nothing was half-done on the standby's behalf: the primary still honours the refresh token.
    assert (
        httpx.post(
            f"{primary.url}/auth/v1/token?grant_type=refresh_token", headers=VERSION, json={"refresh_token": refresh}
        ).status_code
        == 200
    )


def test_livekit_token_is_served_by_the_standby(pair: tuple[BackgroundServer, BackgroundServer]) -> None:
    primary, replica = pair
    user_id, access, _ = _replicated_user(primary.url, replica.url, "meg@example.com")
    (row,) = run_sql(
        primary.url,
        "with c as (insert into public.conversations (created_by) values ($1::uuid) returning id)"
        " insert into public.conversation_members (conversation_id, user_id) select id, $1::uuid from c"
        " returning conversation_id::text as id",
        user_id,
    )
    url, headers = f"{replica.url}/functions/v1/livekit-token", {"Authorization": f"Bearer {access}"}
    deadline = time.monotonic() + 10
    while (response := httpx.post(url, headers=headers, json={"room": row["id"]})).status_code != 200:
        assert response.status_code == 403 and time.monotonic() < deadline, response.text  # not replayed yet
        time.sleep(0.02)
    assert set(response.json()) == {"token", "url"}
