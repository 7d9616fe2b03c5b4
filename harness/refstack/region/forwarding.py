"""Write forwarding: a replica that serves China's reads also accepts their writes by passing them to the primary.

    CN viewer ──► edge ──► Japan standby ──(write? forward over the backbone)──► Singapore primary
                               │  reads, Realtime: served here                  │ commit
                               ◄──────────── WAL (streaming replication) ───────┘

CloudFront sends mainland-China viewers to the Japan origin, and a read replica cannot commit. Without forwarding,
every message a China user sends would fail with 25006, which is not how the product can work; with it, a China
user's write costs the extra Japan → Singapore leg and comes back to them through replication, which is exactly the
latency the China run should measure. Sign-in, refresh and logout are writes too: sessions and refresh tokens live
in the database, which a standby cannot write.

"Am I a standby" is PostgreSQL's answer (replication.is_standby, cached briefly), so forwarding stops by itself
after a promotion. Off by default for a bare region server (a replica then refuses writes with PostgREST's
read-only error); the reference stack turns it on for its replica, and a planned switchover turns it on for the old
primary, which takes the replica's place (replication.forwards_writes). If the primary cannot be reached, the request
falls through to the local handler, which refuses it as read-only: a failover drill sees writes fail until the
replica is promoted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from harness.refstack.region import replication

log = logging.getLogger(__name__)

FORWARDED_HEADER = "x-write-forwarded-to"
"""Set on a forwarded write's response: the region that committed it (x-origin-region stays the replica's)."""
FORWARD_TIMEOUT_S = 30.0

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# POSTs that only read: storage list and sign.
_READ_POSTS = ("/storage/v1/object/list/", "/storage/v1/object/list-v2/", "/storage/v1/object/sign/")
_WRITE_PATHS = ("/rest/v1/", "/storage/v1/", "/auth/v1/signup", "/auth/v1/token", "/auth/v1/logout",
                "/auth/v1/admin/", "/auth/v1/user", "/auth/v1/otp", "/auth/v1/magiclink", "/auth/v1/verify",
                "/auth/v1/recover", "/auth/v1/resend", "/auth/v1/invite", "/auth/v1/factors")  # fmt: skip
# GETs that write (an OTP issued, a link redeemed), and the mailbox of OTPs, which lives with the primary that
# issued them (auth_outbox.py).
_WRITING_GETS = ("/auth/v1/reauthenticate", "/auth/v1/verify", "/auth/v1/admin/test/otp")
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer", "content-length", "host"}
)
SESSION = web.AppKey("forwarding_session", aiohttp.ClientSession)


def is_forwarded_write(method: str, path: str) -> bool:
    if method == "GET" and path.startswith(_WRITING_GETS):
        return True
    if method not in _WRITE_METHODS or path.startswith(_READ_POSTS):
        return False
    return path.startswith(_WRITE_PATHS)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def forward_writes(request: web.Request, handler: Handler) -> web.StreamResponse:
    app = request.app
    primary_url = replication.primary_url(app)
    if not (
        primary_url
        and replication.forwards_writes(app)
        and is_forwarded_write(request.method, request.path)
        and await replication.is_standby(app)
    ):
        return await handler(request)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    data = request.content.iter_chunked(64 * 1024) if request.body_exists else None
    try:
        async with app[SESSION].request(
            request.method, f"{primary_url}{request.raw_path}", headers=headers, data=data, allow_redirects=False
        ) as upstream:
            body = await upstream.read()
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
    except (aiohttp.ClientError, TimeoutError) as exc:
        if request.body_exists and request.content.at_eof():
            raise web.HTTPServiceUnavailable(
                text='{"code":"PGRST002","details":null,"hint":null,"message":"primary unreachable"}',
                content_type="application/json",
            ) from exc
        log.warning("write forwarding to %s failed (%s): answering as a read-only replica", primary_url, exc)
        return await handler(request)
    out_headers.pop("Content-Encoding", None)
    out_headers[FORWARDED_HEADER] = upstream.headers.get("x-origin-region", "primary")
    return web.Response(status=upstream.status, body=body, headers=out_headers)


def setup(app: web.Application) -> None:
    # Installed on every region: a primary that hands its role over in a planned switchover starts forwarding then.
    app.middlewares.append(forward_writes)

    async def open_session(app: web.Application) -> None:
        app[SESSION] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S))

    async def close_session(app: web.Application) -> None:
        await app[SESSION].close()

    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
