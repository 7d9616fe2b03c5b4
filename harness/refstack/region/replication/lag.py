"""Replication state and lag, as PostgreSQL reports it: one query, the JSON built by Postgres.

    primary   pg_stat_replication, one row per connected standby: sent/write/flush/replay LSNs, the write, flush and
              replay lag Postgres measures, and bytes behind = pg_wal_lsn_diff(sent_lsn, replay_lsn)
    replica   pg_last_wal_receive_lsn() and pg_last_wal_replay_lsn() (bytes received but not applied yet: with
              recovery_min_apply_delay that is the delayed WAL), seconds behind = now() -
              pg_last_xact_replay_timestamp() while WAL is pending (0 when everything received is applied: an idle
              primary is not lag), and whether the WAL receiver is streaming (pg_stat_wal_receiver)

The CASE picks the branch in the server, so `pg_current_wal_lsn()` (an error during recovery) is never evaluated on
a standby.
"""

from __future__ import annotations

import json
from typing import Any

from harness.refstack.region.database import Database

STATUS_SQL = """
select case when pg_is_in_recovery() then (
    select json_build_object(
        'role', 'replica',
        'receive_lsn', receive_lsn::text,
        'replay_lsn', replay_lsn::text,
        'replication_lag_bytes', coalesce(greatest(pg_wal_lsn_diff(receive_lsn, replay_lsn), 0), 0),
        'replication_lag_s', case when receive_lsn is null or receive_lsn <= replay_lsn then 0
                                  else coalesce(extract(epoch from now() - pg_last_xact_replay_timestamp()), 0) end,
        'last_replayed_commit', pg_last_xact_replay_timestamp(),
        'primary_reachable', coalesce((select status = 'streaming' from pg_stat_wal_receiver), false),
        'primary_postgres', (select sender_host || ':' || sender_port from pg_stat_wal_receiver))
    from (select pg_last_wal_receive_lsn() as receive_lsn, pg_last_wal_replay_lsn() as replay_lsn) as wal
) else (
    select json_build_object(
        'role', 'primary',
        'current_lsn', pg_current_wal_lsn()::text,
        'replication_lag_bytes', coalesce(max(pg_wal_lsn_diff(sent_lsn, replay_lsn)), 0),
        'replication_lag_s', coalesce(max(extract(epoch from replay_lag)), 0),
        'replicas', coalesce(json_agg(json_build_object(
            'name', application_name,
            'state', state,
            'sync_state', sync_state,
            'sent_lsn', sent_lsn::text,
            'replay_lsn', replay_lsn::text,
            'lag_bytes', pg_wal_lsn_diff(sent_lsn, replay_lsn),
            'unsent_bytes', pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn),
            'write_lag_s', extract(epoch from write_lag),
            'flush_lag_s', extract(epoch from flush_lag),
            'replay_lag_s', extract(epoch from replay_lag)
        ) order by application_name), '[]'::json))
    from pg_stat_replication
) end
"""


async def measure(db: Database) -> dict[str, Any]:
    """This region's role and lag. `replication_lag_ms` is the replica's staleness (on a primary: its worst standby's
    replay lag, 0 when idle, as Postgres clears the lag columns once a standby has caught up)."""
    raw = await db.admin.fetchval(STATUS_SQL)
    status: dict[str, Any] = json.loads(raw)
    status["replication_lag_ms"] = round(float(status.pop("replication_lag_s")) * 1000, 1)
    status["replication_lag_bytes"] = int(status["replication_lag_bytes"])
    return status
