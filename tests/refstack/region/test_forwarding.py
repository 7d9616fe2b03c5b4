"""Write forwarding: a replica with forward_writes passes client writes to its primary; reads stay local."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.errors import TargetUnreachable
from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from harness.refstack.region.forwarding import FORWARDED_HEADER, is_forwarded_write
from tests.refstack.region.conftest import SERVICE_HEADERS as SERVICE


@pytest.fixture
def forwarding_pair() -> Iterator[tuple[BackgroundServer, BackgroundServer]]:
    with background(lambda: build_app(RegionConfig())) as primary:
        config = RegionConfig(region="ap-northeast-1", role="replica", primary_url=primary.url, forward_writes=True)
        with background(lambda: build_app(config)) as replica:
            yield primary, replica


def _signup(url: str, email: str) -> dict[str, Any]:
    response = httpx.post(f"{url}/auth/v1/signup", headers={"apikey": keys.ANON_KEY},
                          json={"email": email, "password": "forward-pass-1"})  # fmt: skip
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.parametrize(
    ("method", "path", "forwarded"),
    [
        ("POST", "/rest/v1/messages", True),
        ("PATCH", "/rest/v1/conversations", True),
        ("DELETE", "/storage/v1/object/attachments", True),
        ("POST", "/storage/v1/object/attachments/a/b.txt", True),
        ("POST", "/auth/v1/signup", True),
        ("GET", "/rest/v1/messages", False),
        ("POST", "/storage/v1/object/list/attachments", False),
        ("POST", "/storage/v1/object/sign/attachments/a/b.txt", False),
        ("POST", "/auth/v1/token", True),  # sessions live in the database now: sign-in and refresh are writes
        ("POST", "/auth/v1/logout", True),
        ("POST", "/functions/v1/livekit-token", False),
        ("POST", "/auth/v1/verify", True),  # OTPs, links and factors are rows of the primary too
        ("GET", "/auth/v1/verify", True),
        ("GET", "/auth/v1/reauthenticate", True),
        ("GET", "/auth/v1/admin/test/otp", True),  # the mailbox lives with the primary that issued the OTPs
        ("POST", "/auth/v1/factors/x/verify", True),
        ("GET", "/auth/v1/user", False),
    ],
)
def test_which_requests_are_writes(method: str, path: str, forwarded: bool) -> None:
    assert is_forwarded_write(method, path) is forwarded


def test_china_users_write_through_the_replica_and_read_their_write_back_there(
    forwarding_pair: tuple[BackgroundServer, BackgroundServer],
) -> None:
    primary, replica = forwarding_pair
    session = _signup(replica.url, "cn-user@example.test")  # sign-up is a write: committed on the primary
    user_id = session["user"]["id"]
    assert httpx.get(f"{primary.url}/auth/v1/admin/users/{user_id}", headers=SERVICE).status_code == 200
    user = {"apikey": keys.ANON_KEY, "Authorization": f"Bearer {session['access_token']}",
            "Prefer": "return=representation"}  # fmt: skip
    created = httpx.post(f"{replica.url}/rest/v1/conversations", headers=user, json={"created_by": user_id})
    assert created.status_code == 201, created.text
    assert created.headers["x-origin-region"] == "ap-northeast-1"
    assert created.headers[FORWARDED_HEADER] == "ap-southeast-1"
    conversation_id = created.json()[0]["id"]
    deadline = time.monotonic() + 3
    rows: list[Any] = []
    while time.monotonic() < deadline and not rows:
        rows = httpx.get(f"{replica.url}/rest/v1/conversations", headers=SERVICE,
                         params={"id": f"eq.{conversation_id}"}).json()  # fmt: skip
        time.sleep(0.01)
    assert rows and rows[0]["created_by"] == user_id, "the forwarded write never replicated back"


def test_forwarded_errors_keep_the_primarys_status_and_body(
    forwarding_pair: tuple[BackgroundServer, BackgroundServer],
) -> None:
    primary, replica = forwarding_pair
    anon = {"apikey": keys.ANON_KEY, "Authorization": f"Bearer {keys.ANON_KEY}"}
    message = {"conversation_id": "00000000-0000-0000-0000-000000000001", "sender_id": "x", "client_msg_id": "1"}
    direct = httpx.post(f"{primary.url}/rest/v1/messages", headers=anon, json=message)
    via_replica = httpx.post(f"{replica.url}/rest/v1/messages", headers=anon, json=message)
    assert direct.status_code >= 400
    assert (via_replica.status_code, via_replica.json()) == (direct.status_code, direct.json())


def test_without_a_reachable_primary_the_replica_refuses_writes_as_read_only() -> None:
    # A replica cannot start without its primary any more (its first start copies the primary's database), so the
    # primary goes away after the replica is up: the forward fails and the standby itself refuses the write.
    with background(lambda: build_app(RegionConfig())) as primary:
        config = RegionConfig(region="ap-northeast-1", role="replica", primary_url=primary.url, forward_writes=True)
        replica = BackgroundServer(lambda: build_app(config)).start()
    try:
        refused = httpx.post(f"{replica.url}/rest/v1/conversations", headers=SERVICE, json={"title": "x"})
        assert refused.status_code == 405
        assert refused.json()["code"] == "25006"
    finally:
        replica.stop()


def test_a_replica_without_its_primary_cannot_start_and_names_it() -> None:
    config = RegionConfig(region="ap-northeast-1", role="replica", primary_url="http://127.0.0.1:9",
                          forward_writes=True)  # fmt: skip
    replica = BackgroundServer(lambda: build_app(config))
    with pytest.raises(TargetUnreachable, match=re.escape("http://127.0.0.1:9/_admin/postgres")):
        replica.start()


def test_sign_in_refresh_and_logout_through_the_replica_are_committed_on_the_primary(
    forwarding_pair: tuple[BackgroundServer, BackgroundServer],
) -> None:
    primary, replica = forwarding_pair
    _signup(primary.url, "cn-signin@example.test")
    anon = {"apikey": keys.ANON_KEY}
    signed_in = httpx.post(f"{replica.url}/auth/v1/token?grant_type=password", headers=anon,
                           json={"email": "cn-signin@example.test", "password": "forward-pass-1"})  # fmt: skip
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.headers[FORWARDED_HEADER] == "ap-southeast-1"
    refreshed = httpx.post(f"{replica.url}/auth/v1/token?grant_type=refresh_token", headers=anon,
                           json={"refresh_token": signed_in.json()["refresh_token"]})  # fmt: skip
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.headers[FORWARDED_HEADER] == "ap-southeast-1"
    access = refreshed.json()["access_token"]
    logout = httpx.post(f"{replica.url}/auth/v1/logout", headers={**anon, "Authorization": f"Bearer {access}"})
    assert logout.status_code == 204, logout.text
    assert logout.headers[FORWARDED_HEADER] == "ap-southeast-1"
    # Logout revoked the session on the primary: its refresh token is spent everywhere.
    reused = httpx.post(f"{primary.url}/auth/v1/token?grant_type=refresh_token", headers=anon,
                        json={"refresh_token": refreshed.json()["refresh_token"]})  # fmt: skip
    assert reused.status_code == 400


def test_after_promotion_writes_commit_locally_instead_of_being_forwarded(
    forwarding_pair: tuple[BackgroundServer, BackgroundServer],
) -> None:
    primary, replica = forwarding_pair
    assert httpx.post(f"{replica.url}/_admin/promote", headers=SERVICE).status_code == 200
    created = httpx.post(f"{replica.url}/rest/v1/conversations", headers={**SERVICE, "Prefer": "return=representation"},
                         json={"title": "local now"})  # fmt: skip
    assert created.status_code == 201, created.text
    assert FORWARDED_HEADER not in created.headers
    conversation_id = created.json()[0]["id"]
    on_primary = httpx.get(f"{primary.url}/rest/v1/conversations", headers=SERVICE,
                           params={"id": f"eq.{conversation_id}"})  # fmt: skip
    assert on_primary.json() == []
