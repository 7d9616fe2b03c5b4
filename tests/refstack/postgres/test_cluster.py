"""A real PostgreSQL cluster: made, restarted on its own data, crashed, copied to a streaming replica, and run as
an unprivileged account when the harness is root."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from harness.errors import ConfigError
from harness.refstack.postgres import binaries
from harness.refstack.postgres.account import SERVER_ACCOUNT
from harness.refstack.postgres.cluster import Cluster


def sql(cluster: Cluster, query: str) -> Any:
    """One value of `query`; a script of several statements runs whole and gives None."""

    async def run() -> Any:
        conn = await asyncpg.connect(cluster.dsn())
        try:
            if ";" in query:
                await conn.execute(query)
                return None
            return await conn.fetchval(query)
        finally:
            await conn.close()

    return asyncio.run(run())


def test_a_new_cluster_is_postgresql_18_and_answers_on_loopback(cluster: Cluster) -> None:
    assert sql(cluster, "show server_version_num").startswith("18")
    assert sql(cluster, "show listen_addresses") == "127.0.0.1"
    assert sql(cluster, "show wal_level") == "logical"
    assert sql(cluster, "show timezone") == "UTC"


def test_as_root_the_server_runs_as_the_unprivileged_account(cluster: Cluster) -> None:
    assert cluster.pid is not None
    uid = int(next(line for line in Path(f"/proc/{cluster.pid}/status").read_text().splitlines()
                   if line.startswith("Uid:")).split()[1])  # fmt: skip
    if os.geteuid() == 0:
        assert cluster.account.name == SERVER_ACCOUNT and uid == cluster.account.uid != 0
        assert cluster.data_dir.stat().st_uid == cluster.account.uid
    else:
        assert uid == os.geteuid()


def test_restart_on_the_same_data_dir_keeps_the_data(cluster: Cluster) -> None:
    sql(cluster, "create table kept (n int); insert into kept values (42)")
    cluster.stop()
    again = Cluster(cluster.data_dir, port=cluster.port)
    again.init()  # a no-op: the directory holds a cluster
    again.start()
    try:
        assert sql(again, "select n from kept") == 42
    finally:
        again.stop()


def test_a_committed_row_survives_kill_9_of_the_postmaster(cluster: Cluster) -> None:
    sql(cluster, "create table crash (n int); insert into crash values (7)")
    assert cluster.pid is not None
    os.kill(cluster.pid, signal.SIGKILL)
    cluster._proc.wait(10)  # type: ignore[union-attr]
    restarted = Cluster(cluster.data_dir, port=cluster.port)
    restarted.start()  # crash recovery from the WAL
    try:
        assert sql(restarted, "select n from crash") == 7
    finally:
        restarted.stop()


def test_a_base_backup_is_a_hot_standby_that_streams_new_commits(cluster: Cluster, tmp_path: Path) -> None:
    sql(cluster, "create table t (n int); insert into t values (1)")
    replica = Cluster(tmp_path / "replica")
    replica.base_backup(cluster.host, cluster.port, "replica_test")
    replica.start()
    try:
        assert sql(replica, "select pg_is_in_recovery()") is True
        sql(cluster, "insert into t values (2)")
        for _ in range(200):
            if sql(replica, "select count(*) from t") == 2:
                break
            asyncio.run(asyncio.sleep(0.02))
        assert sql(replica, "select count(*) from t") == 2
        assert sql(cluster, "select active from pg_replication_slots where slot_name = 'replica_test'") is True
    finally:
        replica.stop()


def test_a_non_empty_directory_without_a_cluster_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty and holds no PostgreSQL cluster"):
        Cluster(tmp_path / "pg").init()


def test_a_wrong_pg_bin_names_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(binaries.PG_BIN_VARIABLE, str(tmp_path))
    with pytest.raises(ConfigError, match=r"HARNESS_PG_BIN=.*initdb, postgres"):
        binaries.bin_dir()
