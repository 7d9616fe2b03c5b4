"""A planned switchover: this primary hands its role to its own streaming standby, losing no acknowledged write.

    checks     the target's /_replication/status: a replica, streaming from this region's PostgreSQL (else
               FailoverRefused, nothing changed); where its PostgreSQL listens (its /_admin/postgres)
    gate       closed once for the whole sequence: new requests are held, the ones in flight drain (one still
               running after DRAIN_S: refused, nothing changed)
    lsn        pg_current_wal_lsn() once drained: every write acknowledged so far is at or before it
    catch up   poll the target's replay_lsn until it reaches lsn, at most timeout_s (else SwitchoverTimeout,
               nothing changed)
    stop       this PostgreSQL stops (a fast shutdown sends its last WAL, shutdown checkpoint included, to the
               target before it exits, so nothing the target lacks is ever written here)
    promote    the target's POST /_admin/promote, with the caller's service-role credentials (refused or
               unanswered, and the target still not a primary: this PostgreSQL starts again as the primary,
               TargetUnreachable)
    follow     failover.follow_stopped: pg_rewind onto the target's timeline (normally nothing to undo; a fresh
               base backup when rewind is impossible) ─► standby of the target through our slot there ─► start
    adopt      the caller records the new role (a standby of the target, forwarding writes to it)
    gate       reopens: the held requests run on a standby, and its writes are forwarded to the new primary

The pre-checks and the catch-up run before anything is stopped, which is why a refusal or a timeout leaves both
regions as they were. Stopping before the promotion (not after) means the old primary can write nothing the new one
has not got: there is no window with two primaries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from harness.errors import TargetUnreachable
from harness.refstack.region import lifecycle
from harness.refstack.region.replication import failover
from harness.refstack.region.replication.failover import FailoverRefused, Rejoin
from harness.refstack.region.replication.gate import DRAIN_S, HOLD_S, Gate
from harness.refstack.region.state import CLUSTER, CONFIG, DB

log = logging.getLogger(__name__)

POLL_S = 0.02
"""How often the target's replay position is asked while it catches up."""
REQUEST_TIMEOUT_S = 10.0
DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = HOLD_S - 15.0
"""The longest catch-up wait a caller may ask: the requests the gate holds give up after HOLD_S, and stopping,
promoting and following take seconds of their own."""
PROMOTE_TIMEOUT_S = failover.PROMOTE_WAIT_S + 10.0


class SwitchoverTimeout(Exception):
    """The target did not replay up to the switchover LSN in time; nothing was changed."""


@dataclass(frozen=True)
class Switched:
    switchover_lsn: str
    caught_up_s: float
    method: Rejoin


def lsn_value(lsn: str) -> int:
    """'16/B374D848' as a number (PostgreSQL's pg_lsn text form: two hex halves of a 64-bit position)."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


async def _get_status(session: aiohttp.ClientSession, target: str) -> dict[str, Any]:
    try:
        async with session.get(f"{target}/_replication/status") as response:
            body: dict[str, Any] = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise TargetUnreachable(f"{target}/_replication/status did not answer: {exc}") from None
    return body


async def _check_target(session: aiohttp.ClientSession, target: str, ours: str) -> None:
    """The target is a standby streaming from our PostgreSQL (host:port `ours`), or FailoverRefused says why not."""
    status = await _get_status(session, target)
    if status.get("role") != "replica":
        raise FailoverRefused(f"{target} is not a standby (its role: {status.get('role')}): nothing to switch over to")
    if not status.get("database_reachable"):
        raise FailoverRefused(f"{target}'s PostgreSQL cannot answer: {status.get('database_error')}")
    if status.get("primary_postgres") != ours or not status.get("primary_reachable"):
        raise FailoverRefused(
            f"{target} is not streaming from this region (it streams from {status.get('primary_postgres')}, "
            f"streaming: {status.get('primary_reachable')}; this region's PostgreSQL is {ours})"
        )


async def _wait_caught_up(session: aiohttp.ClientSession, target: str, lsn: str, timeout_s: float) -> float:
    """Seconds until the target replayed up to lsn; SwitchoverTimeout at timeout_s."""
    wanted = lsn_value(lsn)
    started = time.monotonic()
    deadline = started + timeout_s
    replayed: str | None = None
    for _ in range(int(timeout_s / POLL_S) + 2):  # bounded by count as well as by time
        status = await _get_status(session, target)
        replayed = status.get("replay_lsn")
        if replayed and lsn_value(replayed) >= wanted:
            return time.monotonic() - started
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(POLL_S)
    raise SwitchoverTimeout(
        f"target did not catch up within {timeout_s:g} s: it replayed up to {replayed}, the switchover needs {lsn}; "
        "nothing was changed"
    )


async def _promote(session: aiohttp.ClientSession, target: str, credentials: Mapping[str, str]) -> None:
    try:
        async with session.post(
            f"{target}/_admin/promote", headers=dict(credentials), timeout=aiohttp.ClientTimeout(PROMOTE_TIMEOUT_S)
        ) as response:
            text = await response.text()
            if response.status != 200:
                raise TargetUnreachable(f"{target} refused the promotion ({response.status}): {text}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TargetUnreachable(f"{target}/_admin/promote did not answer: {exc}") from None


async def _promoted_anyway(session: aiohttp.ClientSession, target: str) -> bool:
    """After a promotion call that failed or timed out: is the target a primary all the same? (Then this region
    must follow it, never start again as a second primary.)"""
    try:
        return (await _get_status(session, target)).get("role") == "primary"
    except TargetUnreachable:
        return False


async def switch_over(
    app: web.Application,
    gate: Gate,
    target: str,
    timeout_s: float,
    credentials: Mapping[str, str],
    adopt: Callable[[], None],
) -> Switched:
    """Hand the primary role to `target`, our standby (see the module docstring); `adopt` records the new role while
    the gate is still closed. FailoverRefused and SwitchoverTimeout: nothing was changed; TargetUnreachable after the
    stop: the promotion failed and this region is the primary again."""
    config, cluster = app[CONFIG], app[CLUSTER]
    region = config.region
    ours = f"{cluster.host}:{cluster.port}"
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await _check_target(session, target, ours)
        host, port = await failover.new_primary_address(config, target)
        if (host, port) == (cluster.host, cluster.port):
            raise FailoverRefused(f"{target} is this region itself: give the URL of its standby")
        log.warning("switchover %s → %s: the target streams from us; closing the gate", region, target)
        async with gate.closed() as drained:
            if not drained:
                raise FailoverRefused(
                    f"{gate.in_flight} requests still running after {DRAIN_S:g} s: try again; nothing was changed"
                )
            try:
                lsn = str(await app[DB].admin.fetchval("select pg_current_wal_lsn()::text"))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise FailoverRefused(f"this region's PostgreSQL cannot answer: {exc}") from None
            log.warning("switchover %s → %s: requests drained and held, waiting for replay of %s", region, target, lsn)
            caught_up_s = await _wait_caught_up(session, target, lsn, timeout_s)
            log.warning("switchover %s → %s: the target replayed %s after %.3f s", region, target, lsn, caught_up_s)
            await failover.stop(app)
            log.warning("switchover %s → %s: PostgreSQL stopped, promoting the target", region, target)
            try:
                await _promote(session, target, credentials)
            except TargetUnreachable as exc:
                if not await _promoted_anyway(session, target):
                    log.warning("switchover %s → %s: %s; starting again as the primary", region, target, exc)
                    await failover.restart(app)
                    raise TargetUnreachable(f"{exc}; this region is the primary again") from None
                log.warning("switchover %s → %s: %s, but the target is a primary now", region, target, exc)
            log.warning("switchover %s → %s: the target is the primary, following it", region, target)
            slot = lifecycle.replication_slot(region)
            try:
                await failover.prepare_new_primary(host, port, slot)
            except (TargetUnreachable, FailoverRefused) as exc:
                raise TargetUnreachable(
                    f"{target} was promoted, but {exc}; this region's PostgreSQL is stopped: "
                    f'POST /_admin/demote {{"primary_url": "{target}"}} here to follow it'
                ) from None
            method = await failover.follow_stopped(app, host, port, slot)
            adopt()
            log.warning("switchover %s → %s: following it after %s; reopening the gate", region, target, method)
    return Switched(switchover_lsn=lsn, caught_up_s=round(caught_up_s, 3), method=method)
