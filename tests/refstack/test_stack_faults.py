"""Faults on the reference stack for failover drills, with real processes: the edge's traffic switch, origin
proxies (a partition between the edge and Singapore), and kill / restart of a region with its PostgreSQL.

One stack for the module (primary, replica, edge behind origin proxies); each test leaves it as it found it, and the
kill/restart test runs last.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from harness.errors import ConfigError
from harness.model import keys
from harness.refstack.postgres import binaries
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts

SINGAPORE = "ap-southeast-1"
JAPAN = "ap-northeast-1"
ADMIN = {"Authorization": f"Bearer {keys.SERVICE_ROLE_KEY}"}
SERVICE = {"apikey": keys.SERVICE_ROLE_KEY, **ADMIN}
DEADLINE_S = 20.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceStack]:
    config = StackConfig(
        ports=StackPorts.any(),
        pieces=("primary", "replica", "edge"),
        data_dir=tmp_path_factory.mktemp("faults"),
        health_interval_s=0.1,
        origin_proxies=True,
    )
    with ReferenceStack(config) as running:
        yield running


def wait_until(predicate: Callable[[], Any], what: str, deadline_s: float = DEADLINE_S) -> Any:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not reached within {deadline_s} s")


def served_by(url: str, country: str | None = None) -> str | None:
    headers = {} if country is None else {"CloudFront-Viewer-Country": country}
    try:
        response = httpx.get(f"{url}/health", headers=headers, timeout=5)
    except httpx.TransportError:
        return None
    return response.headers.get("x-origin-region") if response.status_code == 200 else None


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def postgres_port(region_url: str) -> int:
    return int(httpx.get(f"{region_url}/_admin/postgres", headers=SERVICE, timeout=5).json()["port"])


def sql(port: int, query: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(host="127.0.0.1", port=port, user="supabase_admin", database="postgres")
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def switch(stack: ReferenceStack, region: str) -> httpx.Response:
    return httpx.post(
        f"{stack.endpoints.edge_url}/_edge/admin/primary", json={"region": region}, headers=ADMIN, timeout=5
    )


def test_the_edge_admin_switch_takes_the_service_role_key_and_moves_china_and_everyone(
    stack: ReferenceStack,
) -> None:
    edge = stack.endpoints.edge_url
    wrong = httpx.post(f"{edge}/_edge/admin/primary", json={"region": JAPAN}, headers=SERVICE | {
        "Authorization": f"Bearer {keys.ANON_KEY}"}, timeout=5)  # fmt: skip
    assert wrong.status_code == 401
    assert served_by(edge) == SINGAPORE and served_by(edge, "CN") == JAPAN
    try:
        assert switch(stack, JAPAN).json()["changed"] is True
        assert (served_by(edge), served_by(edge, "CN"), served_by(edge, "SG")) == (JAPAN, JAPAN, JAPAN)
        assert httpx.get(f"{edge}/_edge/status", timeout=5).json()["primary_region"] == JAPAN
    finally:
        back = switch(stack, SINGAPORE)
    assert back.json() | {"switched_at_unix_s": None} == {
        "primary_region": SINGAPORE,
        "changed": True,
        "switched_at_unix_s": None,
    }
    assert (served_by(edge), served_by(edge, "CN")) == (SINGAPORE, JAPAN)


def test_disabling_singapores_origin_proxy_partitions_it_from_the_edge_only(stack: ReferenceStack) -> None:
    endpoints = stack.endpoints
    proxy = f"{endpoints.toxiproxy_url}/proxies/origin_{SINGAPORE}"
    assert endpoints.origin_url("primary") != endpoints.primary_url
    listed = httpx.get(f"{endpoints.toxiproxy_url}/proxies", timeout=5).json()
    assert listed[f"origin_{SINGAPORE}"]["upstream"] == f"127.0.0.1:{endpoints.ports['primary']}"
    assert listed[f"origin_{JAPAN}"]["upstream"] == f"127.0.0.1:{endpoints.ports['replica']}"
    edge_origins = httpx.get(f"{endpoints.edge_url}/_edge/status", timeout=5).json()["origins"]
    assert edge_origins[SINGAPORE]["url"] == endpoints.origin_url("primary")
    try:
        assert httpx.post(proxy, json={"enabled": False}, timeout=5).status_code == 200
        wait_until(lambda: served_by(endpoints.edge_url) == JAPAN, "edge fails over to Japan")
        status = httpx.get(f"{endpoints.edge_url}/_edge/status", timeout=5).json()
        assert status["origins"][SINGAPORE]["healthy"] is False
        assert status["decisions"]["SG"]["reason"] == "failover"
        # Partitioned from the edge, not down: the direct URL answers, the proxied one refuses.
        assert served_by(endpoints.primary_url) == SINGAPORE
        assert served_by(endpoints.origin_url("primary")) is None
    finally:
        assert httpx.post(proxy, json={"enabled": True}, timeout=5).status_code == 200
    wait_until(lambda: served_by(endpoints.edge_url) == SINGAPORE, "edge back on Singapore after the partition heals")


def test_a_restarted_toxiproxy_brings_the_origin_proxies_back_on_their_ports(stack: ReferenceStack) -> None:
    endpoints = stack.endpoints
    proxied = dict(endpoints.origin_ports)
    assert set(proxied) == {"primary", "replica"}
    stack.kill("toxiproxy")
    assert not any(port_open(port) for port in [endpoints.ports["toxiproxy"], *proxied.values()])
    stack.restart("toxiproxy")
    assert endpoints.origin_ports == proxied
    assert served_by(endpoints.origin_url("primary")) == SINGAPORE
    assert served_by(endpoints.origin_url("replica")) == JAPAN


def test_kill_closes_both_ports_and_restart_serves_the_same_data_on_the_same_ports(stack: ReferenceStack) -> None:
    endpoints = stack.endpoints
    http_port = endpoints.ports["primary"]
    pg_port = postgres_port(endpoints.primary_url)
    sql(pg_port, "create table public.drill_marks (id int primary key, note text)")
    sql(pg_port, "insert into public.drill_marks values (1, 'before the crash')")
    cluster_dir = Path(stack.config.data_dir or "") / SINGAPORE / "postgres"
    postmaster_pid = int((cluster_dir / "postmaster.pid").read_text().split()[0])
    region_pid = stack.processes["primary"].pid

    stack.kill("primary")
    assert "primary" not in stack.processes
    assert not port_open(http_port) and not port_open(pg_port)
    for pid in (postmaster_pid, region_pid):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except FileNotFoundError:
            continue
        assert state == "Z", f"pid {pid} still running after kill()"
    # A crash, not a clean shutdown: the control file still says the cluster was running.
    control = subprocess.run([binaries.tool("pg_controldata"), str(cluster_dir)], capture_output=True, text=True,
                             check=True, env={**os.environ, "LC_ALL": "C"}).stdout  # fmt: skip
    assert re.search(r"cluster state:\s+in production", control), control
    stack.kill("primary")  # a second kill is a no-op
    with pytest.raises(ConfigError, match="'nope' was not started"):
        stack.kill("nope")
    wait_until(lambda: served_by(endpoints.edge_url) == JAPAN, "edge fails over to Japan while Singapore is dead")

    stack.restart("primary")
    assert endpoints.ports["primary"] == http_port
    assert httpx.get(f"{endpoints.primary_url}/health", timeout=5).json()["role"] == "primary"
    assert postgres_port(endpoints.primary_url) == pg_port
    assert [tuple(r) for r in sql(pg_port, "select id, note from public.drill_marks")] == [(1, "before the crash")]
    # Same PostgreSQL port: Japan's standby reconnects by itself and receives new writes.
    sql(pg_port, "insert into public.drill_marks values (2, 'after the restart')")
    replica_pg = postgres_port(endpoints.replica_url)
    wait_until(lambda: sql(replica_pg, "select 1 from public.drill_marks where id = 2"), "replica streams again")
    wait_until(lambda: served_by(endpoints.edge_url) == SINGAPORE, "edge back on Singapore")
