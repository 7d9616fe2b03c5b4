"""Primary → replica replication, promotion and failback, over real HTTP between two region servers (the replica is
a PostgreSQL hot standby of the primary; test_replication_postgres.py checks the same in the databases)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websocket

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from tests.refstack.region.conftest import SERVICE_HEADERS as SERVICE
from tests.refstack.region.conftest import wait_until

LAG_MS = 300.0


@pytest.fixture
def pair() -> Iterator[tuple[BackgroundServer, BackgroundServer]]:
    with background(lambda: build_app(RegionConfig())) as primary:
        replica_config = RegionConfig(
            region="ap-northeast-1", role="replica", primary_url=primary.url, replication_lag_ms=LAG_MS
        )
        with background(lambda: build_app(replica_config)) as replica:
            yield primary, replica


def _insert_conversation(url: str, title: str) -> httpx.Response:
    return httpx.post(
        f"{url}/rest/v1/conversations",
        headers={**SERVICE, "Prefer": "return=representation"},
        json={"title": title},
        timeout=5,
    )


def _find(url: str, conversation_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/rest/v1/conversations", headers=SERVICE, params={"id": f"eq.{conversation_id}"})
    assert response.status_code == 200, response.text
    return list(response.json())


def test_insert_on_primary_is_readable_on_replica_after_the_configured_lag(pair: tuple[Any, Any]) -> None:
    primary, replica = pair
    created = _insert_conversation(primary.url, "replicated")
    assert created.status_code == 201
    conversation_id = created.json()[0]["id"]
    started = time.monotonic()
    time.sleep(LAG_MS / 1000 / 3)
    assert _find(replica.url, conversation_id) == [], "replica applied a change before its configured lag"
    rows = wait_until(lambda: _find(replica.url, conversation_id), timeout_s=LAG_MS / 1000 + 2.0)
    assert rows[0]["title"] == "replicated"
    assert time.monotonic() - started >= LAG_MS / 1000 * 0.9
    health = httpx.get(f"{replica.url}/health").json()
    assert health["role"] == "replica" and health["primary_reachable"] is True
    # Caught up: everything the primary sent is replayed (was: equal change-log sequence numbers).
    assert wait_until(lambda: httpx.get(f"{replica.url}/health").json()["replication_lag_bytes"] == 0, timeout_s=3)
    assert wait_until(lambda: httpx.get(f"{primary.url}/health").json()["replicas"][0]["lag_bytes"] == 0, timeout_s=3)


def test_replica_refuses_writes_until_promoted(pair: tuple[Any, Any]) -> None:
    _primary, replica = pair
    refused = _insert_conversation(replica.url, "too early")
    assert refused.status_code == 405
    assert refused.json()["code"] == "25006"
    promoted = httpx.post(f"{replica.url}/_admin/promote", headers=SERVICE)
    assert promoted.status_code == 200 and promoted.json()["role"] == "primary"
    assert _insert_conversation(replica.url, "after promotion").status_code == 201
    assert httpx.get(f"{replica.url}/health").json()["role"] == "primary"


def test_admin_calls_need_the_service_role_key(pair: tuple[Any, Any]) -> None:
    primary, replica = pair
    anon = {"apikey": keys.ANON_KEY, "Authorization": f"Bearer {keys.ANON_KEY}"}
    assert httpx.post(f"{replica.url}/_admin/promote", headers=anon).status_code == 403
    demote = httpx.post(f"{replica.url}/_admin/demote", headers=anon, json={"primary_url": replica.url})
    assert demote.status_code == 403  # was GET /_replication/changes: the change log is gone (WAL streaming now)
    where = httpx.get(f"{primary.url}/_admin/postgres", headers=anon)  # a base backup's address: service role only
    assert where.status_code == 403 and "port" not in where.text
    assert httpx.get(f"{replica.url}/health").json()["role"] == "replica"


def test_failback_old_primary_follows_the_new_primary(pair: tuple[Any, Any]) -> None:
    primary, replica = pair
    first = _insert_conversation(primary.url, "before failover").json()[0]["id"]
    wait_until(lambda: _find(replica.url, first), timeout_s=3)
    assert httpx.post(f"{replica.url}/_admin/promote", headers=SERVICE).status_code == 200
    demoted = httpx.post(f"{primary.url}/_admin/demote", headers=SERVICE, json={"primary_url": replica.url})
    assert demoted.status_code == 200 and demoted.json()["role"] == "replica"
    second = _insert_conversation(replica.url, "after failover").json()[0]["id"]
    assert wait_until(lambda: _find(primary.url, second), timeout_s=3)[0]["title"] == "after failover"
    assert _insert_conversation(primary.url, "old primary is read-only now").status_code == 405


def test_replica_realtime_subscriber_receives_replicated_insert(pair: tuple[Any, Any]) -> None:
    primary, replica = pair
    ws_url = (
        replica.url.replace("http://", "ws://") + f"/realtime/v1/websocket?apikey={keys.SERVICE_ROLE_KEY}&vsn=1.0.0"
    )
    sock = websocket.create_connection(ws_url, timeout=5)
    try:
        join = {
            "topic": "realtime:replica-test",
            "event": "phx_join",
            "ref": "1",
            "join_ref": "1",
            "payload": {
                "config": {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": "conversations"}]},
                "access_token": keys.SERVICE_ROLE_KEY,
            },
        }
        sock.send(json.dumps(join))
        reply = json.loads(sock.recv())
        assert reply["payload"]["status"] == "ok", reply
        conversation_id = _insert_conversation(primary.url, "to japan subscribers").json()[0]["id"]
        deadline = time.monotonic() + LAG_MS / 1000 + 3
        while time.monotonic() < deadline:
            frame = json.loads(sock.recv())
            if frame["event"] == "postgres_changes":
                assert frame["payload"]["data"]["record"]["id"] == conversation_id
                break
        else:
            raise AssertionError("no postgres_changes event from the replica")
    finally:
        sock.close()


def test_admin_can_drop_every_realtime_socket(pair: tuple[Any, Any]) -> None:
    primary, _replica = pair
    ws_url = primary.url.replace("http://", "ws://") + f"/realtime/v1/websocket?apikey={keys.ANON_KEY}&vsn=1.0.0"
    sock = websocket.create_connection(ws_url, timeout=5)
    try:
        anon = {"Authorization": f"Bearer {keys.ANON_KEY}"}
        assert httpx.post(f"{primary.url}/_admin/realtime/disconnect", headers=anon).status_code == 403
        dropped = httpx.post(f"{primary.url}/_admin/realtime/disconnect", headers=SERVICE)
        assert dropped.status_code == 200 and dropped.json() == {"disconnected": 1}
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
            while True:  # a close frame, then the socket is gone
                if sock.recv() == "":
                    raise websocket.WebSocketConnectionClosedException("closed")
    finally:
        sock.close()


def test_stored_object_is_downloadable_from_the_replica(pair: tuple[Any, Any]) -> None:
    primary, replica = pair
    body = bytes(range(256)) * 4096  # 1 MiB, not compressible to nothing
    uploaded = httpx.post(
        f"{primary.url}/storage/v1/object/attachments/replicated/blob.bin",
        headers={**SERVICE, "Content-Type": "application/octet-stream"},
        content=body,
    )
    assert uploaded.status_code == 200, uploaded.text

    def download() -> bytes | None:
        response = httpx.get(f"{replica.url}/storage/v1/object/attachments/replicated/blob.bin", headers=SERVICE)
        return response.content if response.status_code == 200 else None

    assert wait_until(download, timeout_s=LAG_MS / 1000 + 3) == body


def test_a_promoted_replica_takes_writes_and_streams_them_over_realtime(pair: tuple[Any, Any]) -> None:
    _primary, replica = pair
    assert httpx.post(f"{replica.url}/_admin/promote", headers=SERVICE).status_code == 200
    ws_url = (
        replica.url.replace("http://", "ws://") + f"/realtime/v1/websocket?apikey={keys.SERVICE_ROLE_KEY}&vsn=1.0.0"
    )
    sock = websocket.create_connection(ws_url, timeout=5)
    try:
        join = {
            "topic": "realtime:promoted-test",
            "event": "phx_join",
            "ref": "1",
            "join_ref": "1",
            "payload": {
                "config": {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": "conversations"}]},
                "access_token": keys.SERVICE_ROLE_KEY,
            },
        }
        sock.send(json.dumps(join))
        assert json.loads(sock.recv())["payload"]["status"] == "ok"
        created = _insert_conversation(replica.url, "written on the new primary")
        assert created.status_code == 201, created.text
        conversation_id = created.json()[0]["id"]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            frame = json.loads(sock.recv())
            if frame["event"] == "postgres_changes":
                assert frame["payload"]["data"]["record"]["id"] == conversation_id
                break
        else:
            raise AssertionError("no postgres_changes event from the promoted replica")
    finally:
        sock.close()


def test_reads_during_failback_are_held_then_served_never_failed(pair: tuple[Any, Any]) -> None:
    primary, replica = pair
    first = _insert_conversation(primary.url, "readable throughout").json()[0]["id"]
    wait_until(lambda: _find(replica.url, first), timeout_s=3)
    assert httpx.post(f"{replica.url}/_admin/promote", headers=SERVICE).status_code == 200
    statuses: list[int] = []
    stop = threading.Event()

    def read_old_primary() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                response = client.get(f"{primary.url}/rest/v1/conversations", headers=SERVICE,
                                      params={"id": f"eq.{first}"})  # fmt: skip
                statuses.append(response.status_code)

    reader = threading.Thread(target=read_old_primary)
    reader.start()
    try:
        time.sleep(0.2)
        demoted = httpx.post(f"{primary.url}/_admin/demote", headers=SERVICE, json={"primary_url": replica.url},
                             timeout=60)  # fmt: skip
        assert demoted.status_code == 200, demoted.text
        time.sleep(0.2)
    finally:
        stop.set()
        reader.join()
    assert len(statuses) > 10 and set(statuses) == {200}, f"reads failed while PostgreSQL restarted: {set(statuses)}"
