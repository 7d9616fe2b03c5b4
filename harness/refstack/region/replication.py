"""Primary → replica replication, promotion and failback for the region servers.

    primary                                        replica (read-only until promoted)
    ───────                                        ──────────────────────────────────
    Database._changes ◄── GET /_replication/changes?after=SEQ&wait_s=… (long poll) ── follower task
                                                   │ waits until commit_timestamp + extra lag (RPO knob)
                                                   ▼
                                                   Database.apply_change(change) ──► Realtime fan-out, membership

The replica pulls the primary's change log in commit order and applies each change with the primary's sequence
number, so after `POST /_admin/promote` the new primary simply continues the same log. `POST /_admin/demote`
with `{"primary_url": …}` turns a recovered old primary into a replica of the new one (failback): it keeps
following from its own last sequence number. Writes the old primary acknowledged but never shipped before it
failed are the RPO a failover drill measures; they are reported, not merged.

All of these routes need the service-role key.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any

import aiohttp
from aiohttp import web

from harness.model import keys
from harness.refstack.region import storage
from harness.refstack.region.db import Change
from harness.refstack.region.state import CONFIG, DB, bearer_token

log = logging.getLogger(__name__)

POLL_WAIT_S = 1.0
"""How long the primary holds a long poll open when the replica is caught up (bounds failover detection too)."""
BATCH_LIMIT = 500
RETRY_BACKOFF_S = (0.1, 0.2, 0.5, 1.0)
"""Waits between attempts while the primary is unreachable; the last one repeats."""


class ReplicationState:
    """The follower's view, reported by /health and /_replication/status."""

    def __init__(self) -> None:
        self.primary_url: str | None = None
        self.primary_last_seq = 0
        self.primary_reachable = False
        self.oldest_unapplied_commit: str | None = None
        self.last_contact_monotonic: float | None = None
        self.applied = 0
        self.task: asyncio.Task[None] | None = None
        self.new_commit = asyncio.Event()
        self.session: aiohttp.ClientSession | None = None

    def lag_ms(self, applied_seq: int) -> float:
        if self.primary_url is None or self.oldest_unapplied_commit is None or applied_seq >= self.primary_last_seq:
            return 0.0
        committed = dt.datetime.fromisoformat(self.oldest_unapplied_commit.replace("Z", "+00:00"))
        return max(0.0, (dt.datetime.now(dt.UTC) - committed).total_seconds() * 1000)


STATE = web.AppKey("replication", ReplicationState)


def require_service(request: web.Request) -> None:
    token = bearer_token(request)
    try:
        claims = keys.verify(token or "", request.app[CONFIG].jwt_secret)
    except keys.TokenError:
        claims = None
    if claims is None or not claims.is_service:
        raise web.HTTPForbidden(
            text='{"message":"replication and admin routes need the service-role key"}',
            content_type="application/json",
        )


def _commit_time(change: Change) -> float:
    return dt.datetime.fromisoformat(change.commit_timestamp.replace("Z", "+00:00")).timestamp()


# -- primary side ----------------------------------------------------------------------------------------------
async def _changes(request: web.Request) -> web.Response:
    require_service(request)
    db = request.app[DB]
    state = request.app[STATE]
    try:
        after = int(request.query.get("after", "0"))
        limit = min(int(request.query.get("limit", str(BATCH_LIMIT))), BATCH_LIMIT)
        wait_s = min(float(request.query.get("wait_s", "0")), 30.0)
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"message":"after, limit and wait_s must be numbers"}', content_type="application/json"
        ) from None
    if db.last_seq <= after and wait_s > 0:
        state.new_commit.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.new_commit.wait(), wait_s)
    changes = db.changes_since(after, limit)
    return web.json_response({"last_seq": db.last_seq, "changes": [c.to_json() for c in changes]})


async def _blob(request: web.Request) -> web.StreamResponse:
    """Object bodies are content-addressed files outside the change log; a replica fetches them by hash."""
    require_service(request)
    path = await storage.blob_path(request.app, request.match_info["sha256"])
    if path is None:
        raise web.HTTPNotFound(text='{"message":"no such blob"}', content_type="application/json")
    return web.FileResponse(path)


# -- replica side ----------------------------------------------------------------------------------------------
async def _fetch_blob(app: web.Application, sha256: str) -> bytes | None:
    state = app[STATE]
    session = state.session
    if state.primary_url is None or session is None or session.closed:
        return None
    headers = {"Authorization": f"Bearer {app[CONFIG].service_role_key}"}
    try:
        async with session.get(f"{state.primary_url}/_replication/blobs/{sha256}", headers=headers) as response:
            return await response.read() if response.status == 200 else None
    except (aiohttp.ClientError, TimeoutError):
        return None


async def _ensure_blob(app: web.Application, change: Change) -> None:
    """Fetch an object's body before its row is applied, so the replica never lists bytes it cannot serve."""
    sha256 = (change.record or {}).get("content_sha256")
    if change.table == "storage_objects" and isinstance(sha256, str):
        await storage.blob_path(app, sha256)  # fetches through BLOB_FETCHER on a miss


async def _follow(app: web.Application) -> None:
    state = app[STATE]
    db = app[DB]
    config = app[CONFIG]
    headers = {"Authorization": f"Bearer {config.service_role_key}", "apikey": config.service_role_key}
    lag_s = config.replication_lag_ms / 1000
    attempt = 0
    timeout = aiohttp.ClientTimeout(total=POLL_WAIT_S + 10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        state.session = session
        while state.primary_url is not None:
            url = f"{state.primary_url}/_replication/changes"
            params = {"after": str(db.last_seq), "limit": str(BATCH_LIMIT), "wait_s": str(POLL_WAIT_S)}
            try:
                async with session.get(url, params=params, headers=headers) as response:
                    response.raise_for_status()
                    body: dict[str, Any] = await response.json()
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                if state.primary_reachable:
                    log.warning("replication: primary %s unreachable: %s", state.primary_url, exc)
                state.primary_reachable = False
                await asyncio.sleep(RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)])
                attempt += 1
                continue
            attempt = 0
            state.primary_reachable = True
            state.last_contact_monotonic = time.monotonic()
            state.primary_last_seq = int(body["last_seq"])
            changes = [Change.from_json(c) for c in body["changes"]]
            for change in changes:
                state.oldest_unapplied_commit = change.commit_timestamp
                # The configured extra lag makes RPO measurable: a change becomes visible lag_s after its commit.
                delay = _commit_time(change) + lag_s - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await _ensure_blob(app, change)
                if state.primary_url is None:
                    return  # promoted while waiting: later changes are not ours any more
                db.apply_change(change)
                state.applied += 1
            if db.last_seq >= state.primary_last_seq:
                state.oldest_unapplied_commit = None


def start_following(app: web.Application, primary_url: str) -> None:
    state = app[STATE]
    stop_following(app)
    app[DB].read_only = True
    state.primary_url = primary_url.rstrip("/")
    state.task = asyncio.get_running_loop().create_task(_follow(app), name="replication-follower")


def stop_following(app: web.Application) -> None:
    state = app[STATE]
    state.primary_url = None
    state.oldest_unapplied_commit = None
    if state.task is not None:
        state.task.cancel()
        state.task = None


async def _promote(request: web.Request) -> web.Response:
    require_service(request)
    app = request.app
    stop_following(app)
    app[DB].read_only = False
    log.warning("promoted to primary at seq %d", app[DB].last_seq)
    return web.json_response({"role": "primary", "last_seq": app[DB].last_seq})


async def _demote(request: web.Request) -> web.Response:
    require_service(request)
    try:
        body = await request.json()
        primary_url = str(body["primary_url"])
    except (ValueError, KeyError, TypeError):
        raise web.HTTPBadRequest(
            text='{"message":"body must be {\\"primary_url\\": \\"http://…\\"}"}', content_type="application/json"
        ) from None
    if not primary_url.startswith(("http://", "https://")):
        raise web.HTTPBadRequest(
            text='{"message":"primary_url must be an http(s) URL"}', content_type="application/json"
        )
    start_following(request.app, primary_url)
    return web.json_response({"role": "replica", "primary_url": primary_url, "last_seq": request.app[DB].last_seq})


def status(app: web.Application) -> dict[str, Any]:
    state = app[STATE]
    db = app[DB]
    return {
        "role": "replica" if db.read_only else "primary",
        "last_seq": db.last_seq,
        "primary_url": state.primary_url,
        "primary_reachable": state.primary_reachable if state.primary_url else None,
        "primary_last_seq": state.primary_last_seq if state.primary_url else None,
        "replication_lag_ms": round(state.lag_ms(db.last_seq), 1),
        "applied_changes": state.applied,
    }


async def _status(request: web.Request) -> web.Response:
    return web.json_response(status(request.app))


def setup(app: web.Application) -> None:
    app[STATE] = ReplicationState()
    app[storage.BLOB_FETCHER] = lambda sha256: _fetch_blob(app, sha256)
    app.router.add_get("/_replication/changes", _changes)
    app.router.add_get("/_replication/status", _status)
    app.router.add_get("/_replication/blobs/{sha256}", _blob)
    app.router.add_post("/_admin/promote", _promote)
    app.router.add_post("/_admin/demote", _demote)

    def wake_long_polls(_change: Change) -> None:
        app[STATE].new_commit.set()

    app[DB].listen(wake_long_polls)

    async def on_startup(app: web.Application) -> None:
        primary_url = app[CONFIG].primary_url
        if app[CONFIG].role == "replica" and primary_url:
            start_following(app, primary_url)

    async def on_cleanup(app: web.Application) -> None:
        task = app[STATE].task
        stop_following(app)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
