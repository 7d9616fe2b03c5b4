"""Japan as a physical streaming replica, checked in PostgreSQL itself: lag reporting, delayed apply, promotion and
failback with pg_rewind (or a fresh base backup). Writes go straight to the clusters over SQL, so these tests need
nothing of the REST layer; test_replication.py checks the same through the APIs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from harness.errors import TargetUnreachable
from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.postgres.cluster import Cluster
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from harness.refstack.region.state import CLUSTER
from tests.refstack.region.conftest import SERVICE_HEADERS as SERVICE
from tests.refstack.region.conftest import run_sql, wait_until

DELAY_MS = 1000.0


def insert_conversation(server: BackgroundServer, title: str) -> str:
    return str(run_sql(server.url, "insert into public.conversations (title) values ($1) returning id", title)[0]["id"])


def titles(server: BackgroundServer) -> set[str]:
    return {row["title"] for row in run_sql(server.url, "select title from public.conversations")}


def status(server: BackgroundServer) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/_replication/status")
    assert response.status_code == 200, response.text
    return dict(response.json())


def replica_config(primary: BackgroundServer, **overrides: Any) -> RegionConfig:
    return RegionConfig(**{"region": "ap-northeast-1", "role": "replica", "primary_url": primary.url, **overrides})


@pytest.fixture
def pair() -> Iterator[tuple[BackgroundServer, BackgroundServer]]:
    with background(lambda: build_app(RegionConfig())) as primary:
        config = replica_config(primary)
        with background(lambda: build_app(config)) as replica:
            yield primary, replica


@pytest.fixture
def delayed_pair() -> Iterator[tuple[BackgroundServer, BackgroundServer]]:
    with background(lambda: build_app(RegionConfig())) as primary:
        config = replica_config(primary, replication_lag_ms=DELAY_MS)
        with background(lambda: build_app(config)) as replica:
            yield primary, replica


def test_the_primary_reports_its_streaming_replica_and_the_replica_its_wal_positions(pair: Any) -> None:
    primary, replica = pair
    insert_conversation(primary, "lag probe")
    wait_until(lambda: "lag probe" in titles(replica), timeout_s=5)
    on_primary = wait_until(lambda: (s := status(primary))["replicas"] and s["replication_lag_bytes"] == 0 and s, 5)
    assert on_primary["role"] == "primary"
    [standby] = on_primary["replicas"]
    assert standby["name"] == "replica_ap_northeast_1"
    assert standby["state"] == "streaming" and standby["sync_state"] == "async"
    assert standby["lag_bytes"] == 0 and standby["unsent_bytes"] == 0
    on_replica = wait_until(lambda: (s := status(replica))["replication_lag_bytes"] == 0 and s, 5)
    assert on_replica["role"] == "replica" and on_replica["primary_reachable"] is True
    assert on_replica["primary_url"] == primary.url
    assert on_replica["replication_lag_ms"] == 0.0
    assert on_replica["last_replayed_commit"] is not None
    health = httpx.get(f"{replica.url}/health").json()
    assert health["role"] == "replica" and health["replay_lsn"] == on_replica["replay_lsn"]


def test_recovery_min_apply_delay_holds_a_commit_back_and_the_lag_shows_it(delayed_pair: Any) -> None:
    primary, replica = delayed_pair
    settings = run_sql(replica.url, "select setting from pg_settings where name = 'recovery_min_apply_delay'")
    assert settings[0]["setting"] == str(int(DELAY_MS))
    insert_conversation(primary, "first")
    wait_until(lambda: "first" in titles(replica), timeout_s=DELAY_MS / 1000 + 5)

    insert_conversation(primary, "delayed")
    committed = time.monotonic()
    # Received (streaming is immediate) but not applied: the WAL waits out the delay.
    pending = wait_until(lambda: (s := status(replica))["replication_lag_bytes"] > 0 and s, timeout_s=DELAY_MS / 2000)
    assert pending["replication_lag_ms"] > 0, pending
    assert "delayed" not in titles(replica), "the replica applied a commit before recovery_min_apply_delay"
    assert time.monotonic() - committed < DELAY_MS / 1000, "too slow to observe the delay: the check above is void"
    wait_until(lambda: "delayed" in titles(replica), timeout_s=DELAY_MS / 1000 + 5)
    assert time.monotonic() - committed >= DELAY_MS / 1000 * 0.8
    assert wait_until(lambda: status(replica)["replication_lag_bytes"] == 0, timeout_s=5)


def test_promotion_makes_the_replica_writable_once_and_answers_the_same_again(pair: Any) -> None:
    primary, replica = pair
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        insert_conversation(replica, "too early")
    first = httpx.post(f"{replica.url}/_admin/promote", headers=SERVICE)
    assert first.status_code == 200 and first.json() == {"role": "primary", "region": "ap-northeast-1"}
    again = httpx.post(f"{replica.url}/_admin/promote", headers=SERVICE)
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    insert_conversation(replica, "after promotion")
    assert "after promotion" in titles(replica)
    assert "after promotion" not in titles(primary)  # a new timeline: nothing flows back
    health = httpx.get(f"{replica.url}/health").json()
    assert health["role"] == "primary" and health["replicas"] == []
    assert run_sql(replica.url, "select pg_is_in_recovery() as r")[0]["r"] is False


def test_admin_routes_need_the_service_role_key_and_a_well_formed_body(pair: Any) -> None:
    primary, replica = pair
    anon = {"apikey": keys.ANON_KEY, "Authorization": f"Bearer {keys.ANON_KEY}"}
    assert httpx.post(f"{replica.url}/_admin/promote", headers=anon).status_code == 403
    demote = httpx.post(f"{primary.url}/_admin/demote", headers=anon, json={"primary_url": replica.url})
    assert demote.status_code == 403
    for body in ({}, {"primary_url": "ftp://x"}, [1]):
        refused = httpx.post(f"{primary.url}/_admin/demote", headers=SERVICE, json=body)
        assert refused.status_code == 400 and "primary_url" in refused.json()["message"]
    itself = httpx.post(f"{primary.url}/_admin/demote", headers=SERVICE, json={"primary_url": primary.url})
    assert itself.status_code == 409
    # Following a standby would make two standbys: refused until that one is promoted.
    standby = httpx.post(f"{primary.url}/_admin/demote", headers=SERVICE, json={"primary_url": replica.url})
    assert standby.status_code == 409 and "promote" in standby.json()["message"]
    assert httpx.get(f"{primary.url}/health").json()["role"] == "primary"
    assert httpx.get(f"{replica.url}/health").json()["role"] == "replica"


def _fail_over_with_divergence(primary: BackgroundServer, replica: BackgroundServer) -> None:
    """Promote the replica, then let the old primary commit a write the new one never sees (what pg_rewind undoes)."""
    insert_conversation(primary, "before failover")
    wait_until(lambda: "before failover" in titles(replica), timeout_s=5)
    assert httpx.post(f"{replica.url}/_admin/promote", headers=SERVICE).status_code == 200
    insert_conversation(primary, "lost on the old primary")
    insert_conversation(replica, "after failover")


def _check_failback(primary: BackgroundServer, replica: BackgroundServer, method: str) -> None:
    body = {"primary_url": replica.url}
    demoted = httpx.post(f"{primary.url}/_admin/demote", headers=SERVICE, json=body, timeout=120)
    assert demoted.status_code == 200, demoted.text
    assert demoted.json() == {"role": "replica", "region": "ap-southeast-1", "primary_url": replica.url,
                              "method": method}  # fmt: skip
    expected = {"before failover", "after failover"}
    assert wait_until(lambda: titles(primary) == expected, timeout_s=5), "the old primary kept its diverged write"
    insert_conversation(replica, "after failback")
    wait_until(lambda: "after failback" in titles(primary), timeout_s=5)
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        insert_conversation(primary, "old primary is read-only now")
    on_old = status(primary)
    assert on_old["role"] == "replica" and on_old["primary_reachable"] is True and on_old["primary_url"] == replica.url
    [follower] = status(replica)["replicas"]
    assert follower["name"] == "replica_ap_southeast_1" and follower["state"] == "streaming"
    slots = run_sql(replica.url, "select slot_name, active from pg_replication_slots where slot_type = 'physical'")
    assert [(s["slot_name"], s["active"]) for s in slots] == [("replica_ap_southeast_1", True)]
    again = httpx.post(f"{primary.url}/_admin/demote", headers=SERVICE, json={"primary_url": replica.url})
    assert again.status_code == 200 and again.json()["method"] == "already_following"


def test_failback_rewinds_the_old_primary_onto_the_new_timeline(pair: Any) -> None:
    primary, replica = pair
    _fail_over_with_divergence(primary, replica)
    _check_failback(primary, replica, "rewind")


def test_failback_takes_a_fresh_base_backup_when_rewind_is_impossible(
    pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    primary, replica = pair
    _fail_over_with_divergence(primary, replica)

    def impossible(self: Cluster, host: str, port: int) -> None:
        raise TargetUnreachable("pg_rewind failed (pg_rewind exit 1): could not find common ancestor")

    monkeypatch.setattr(Cluster, "rewind", impossible)
    _check_failback(primary, replica, "base_backup")


def test_a_promoted_replica_restarted_on_its_data_dir_stays_primary(tmp_path: Path) -> None:
    with background(lambda: build_app(RegionConfig())) as primary:
        config = replica_config(primary, data_dir=tmp_path)
        with background(lambda: build_app(config)) as replica:
            assert httpx.post(f"{replica.url}/_admin/promote", headers=SERVICE).status_code == 200
            insert_conversation(replica, "written after promotion")
        with background(lambda: build_app(config)) as restarted:
            assert status(restarted)["role"] == "primary"
            assert "written after promotion" in titles(restarted)


def test_health_answers_503_while_the_regions_postgres_is_down(pair: Any) -> None:
    primary, replica = pair

    async def stop_postgres() -> None:
        await asyncio.to_thread(replica.app[CLUSTER].stop)

    async def start_postgres() -> None:
        await asyncio.to_thread(replica.app[CLUSTER].start)

    replica.call(stop_postgres)
    down = httpx.get(f"{replica.url}/health")
    assert down.status_code == 503
    assert down.json()["status"] == "unavailable" and down.json()["database_reachable"] is False
    assert down.json()["role"] == "replica"  # the last role Postgres reported
    replica.call(start_postgres)
    up = wait_until(lambda: (r := httpx.get(f"{replica.url}/health")).status_code == 200 and r.json(), timeout_s=10)
    assert up["role"] == "replica" and up["status"] == "ok"
    insert_conversation(primary, "after the standby restarted")
    wait_until(lambda: "after the standby restarted" in titles(replica), timeout_s=5)


def test_a_replica_restarted_on_its_data_dir_follows_its_restarted_primary(tmp_path: Path) -> None:
    primary_config = RegionConfig(data_dir=tmp_path / "primary")
    with background(lambda: build_app(primary_config)) as primary:
        config = replica_config(primary, data_dir=tmp_path / "replica")
        with background(lambda: build_app(config)):
            pass
    # Both come back on the same data dirs; the primary's PostgreSQL listens on a new port (picked at each start).
    with background(lambda: build_app(primary_config)) as primary:
        config = replica_config(primary, data_dir=tmp_path / "replica")
        with background(lambda: build_app(config)) as replica:
            insert_conversation(primary, "after both restarted")
            assert wait_until(lambda: "after both restarted" in titles(replica), timeout_s=10)
            assert status(replica)["primary_reachable"] is True


def test_a_second_replica_that_replayed_past_the_fork_is_rewound_to_follow_the_promoted_one() -> None:
    with background(lambda: build_app(RegionConfig())) as primary:
        first_config = replica_config(primary)
        second_config = replica_config(primary, region="ap-northeast-2")
        with (
            background(lambda: build_app(first_config)) as first,
            background(lambda: build_app(second_config)) as second,
        ):
            assert httpx.post(f"{first.url}/_admin/promote", headers=SERVICE).status_code == 200
            insert_conversation(primary, "past the fork")  # the second replica still follows the old primary
            wait_until(lambda: "past the fork" in titles(second), timeout_s=5)
            insert_conversation(first, "on the new primary")
            body = {"primary_url": first.url}
            moved = httpx.post(f"{second.url}/_admin/demote", headers=SERVICE, json=body, timeout=120)
            assert moved.status_code == 200 and moved.json()["method"] == "rewind", moved.text
            assert wait_until(lambda: titles(second) == {"on the new primary"}, timeout_s=5)
            assert status(second)["primary_url"] == first.url
