"""The smoke checklist: every user-facing flow once, in order, from the orchestrator process (httpx and plain
websocket-client; no gevent here). Each check becomes a `smoke.<name>` gate and a JUnit testcase.

    health ─► sign_in ─┬─► message_realtime   bob's realtime socket receives alice's message
                       ├─► meeting_join       the token function, then the LiveKit /rtc join
                       ├─► file_transfer      alice uploads to the conversation's folder, bob downloads it
                       └─► rls_stranger       a user outside the conversation reads nothing of it
    web_compression, web_cache_headers, web_security_headers     the web shell the CDN serves
    china_routing                                                CN viewers reach Japan (reference stack only)

A check that needs an earlier one (a signed-in user, a conversation) fails with "not run: …" when that one failed.
Supabase calls go through `harness.clients.supabase` (sync client, Realtime frames) with the target's names
(tables, bucket, token function, region header); the web shell, `/health` and LiveKit `/rtc` are spoken here.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import websocket
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from harness.clients.sockets import NO_REDIRECTS
from harness.clients.supabase import api
from harness.clients.supabase.sync import SupabaseClient
from harness.model.result import SmokeCheck
from harness.model.target_config import Names
from harness.run.target import Target, check_allowed, check_url
from harness.scenarios.viewer import viewer_headers

CHECK_TIMEOUT_S = 10.0
"""Longest any one network step of a check may take (HTTP call, websocket frame, realtime delivery)."""
PASSWORD = "smoke-check-pass-1"
FILE_BYTES = 64 * 1024
JAPAN = "ap-northeast-1"
SINGAPORE = "ap-southeast-1"

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class CheckFailed(Exception):
    """A check's expectation did not hold; the message says what was seen."""


@dataclass
class CheckResult:
    name: str
    passed: bool
    message: str
    elapsed_ms: float

    def to_smoke_check(self) -> SmokeCheck:
        return SmokeCheck(name=self.name, passed=self.passed, message=f"{self.message} ({self.elapsed_ms:.0f} ms)")


@dataclass
class _User:
    email: str
    id: str = ""
    token: str = ""


@dataclass
class _Context:
    target: Target
    http: httpx.Client
    """For what is not Supabase: the web shell."""
    supabase: SupabaseClient
    """The anon key; users' calls add their access token."""
    admin: SupabaseClient | None = None
    """The service_role key, when the target has one (confirmed users, cleanup)."""
    users: dict[str, _User] = field(default_factory=dict)
    confirm_remote: bool = False
    conversation_id: str = ""
    message_id: str = ""
    uploaded: list[str] = field(default_factory=list)
    """Storage paths the checks uploaded: removed at clean-up (deleting users does not delete their files)."""

    @property
    def names(self) -> Names:
        return self.supabase.names

    def user(self, name: str) -> _User:
        user = self.users.get(name)
        if user is None or not user.token:
            raise CheckFailed("not run: sign_in failed")
        return user

    def conversation(self) -> str:
        if not self.conversation_id:
            raise CheckFailed("not run: message_realtime could not create the conversation")
        return self.conversation_id


def _redact(text: str) -> str:
    return _JWT.sub("<jwt>", text)


def _expect(response: httpx.Response, status: int, what: str) -> Any:
    if response.status_code != status:
        raise CheckFailed(f"{what} answered {response.status_code}, expected {status}: {_redact(response.text[:200])}")
    return response.json() if response.content and "json" in response.headers.get("content-type", "") else None


# ---- the checks ----


def _health(ctx: _Context) -> str:
    # A Supabase project answers the first; the reference stack's edge the second.
    probes = ((api.AUTH_HEALTH, ctx.supabase.auth_health), ("/health", lambda: ctx.supabase.request("GET", "/health")))
    for path, probe in probes:
        response = probe()
        if response.status_code == 200:
            region = ctx.supabase.region(response)
            return f"{path} answered 200" + (f" from {region}" if region else "")
    raise CheckFailed(f"neither {api.AUTH_HEALTH} nor /health answered 200 (last: {response.status_code})")


def _sign_in(ctx: _Context) -> str:
    tag = uuid.uuid4().hex[:10]
    for name in ("alice", "bob", "stranger"):
        user = _User(email=f"smoke-{name}-{tag}@example.test")
        if ctx.admin is not None:  # create confirmed users, as a real project with email confirmation needs
            user.id = _expect(ctx.admin.admin_create_user(user.email, PASSWORD), 200, "admin create user")["id"]
        else:
            _expect(ctx.supabase.sign_up(user.email, PASSWORD), 200, "sign-up")
        session = _expect(ctx.supabase.sign_in(user.email, PASSWORD), 200, "password sign-in")
        user.token, user.id = session["access_token"], session["user"]["id"]
        ctx.users[name] = user
    return "3 users signed in with a password"


def _create_conversation(ctx: _Context, alice: _User, bob: _User) -> str:
    names = ctx.names
    rows = _expect(
        ctx.supabase.insert(names.conversations, {"title": "smoke", "created_by": alice.id}, token=alice.token),
        201,
        "create conversation",
    )
    conversation_id = str(rows[0]["id"])
    # return=minimal: PostgreSQL checks RETURNING rows against the SELECT policy with the statement's snapshot, in
    # which the creator's own new membership is not visible yet, so return=representation is refused (42501).
    rows = [{"conversation_id": conversation_id, "user_id": member.id} for member in (alice, bob)]
    _expect(ctx.supabase.insert(names.members, rows, returning=False, token=alice.token), 201, "add members")
    return conversation_id


def _message_realtime(ctx: _Context) -> str:
    alice, bob = ctx.user("alice"), ctx.user("bob")
    ctx.conversation_id = _create_conversation(ctx, alice, bob)
    with ctx.supabase.realtime(CHECK_TIMEOUT_S) as sock:
        config = api.join_config([api.message_inserts(ctx.conversation_id, ctx.names)])
        reply = _found(sock.join(api.topic(f"smoke-{ctx.conversation_id}"), config, bob.token))
        if api.reply_status(reply) != "ok":
            raise CheckFailed(f"realtime join refused: {_redact(json.dumps(reply['payload']))[:200]}")
        client_msg_id = f"smoke-{uuid.uuid4().hex[:12]}"
        row = {"conversation_id": ctx.conversation_id, "sender_id": alice.id, "client_msg_id": client_msg_id}
        sent_at = time.perf_counter()
        rows = _expect(
            ctx.supabase.insert(ctx.names.messages, {**row, "content": "smoke check"}, token=alice.token),
            201,
            "send message",
        )
        ctx.message_id = str(rows[0]["id"])

        def delivered(frame: dict[str, Any]) -> bool:
            record = api.change_record(frame)
            return record is not None and record.get("client_msg_id") == client_msg_id

        _found(sock.next_frame(delivered))
        delivery_ms = (time.perf_counter() - sent_at) * 1000
    return f"bob received alice's message over realtime {delivery_ms:.0f} ms after the insert was sent"


def _found(frame: dict[str, Any] | None) -> dict[str, Any]:
    if frame is None:
        raise CheckFailed(f"no matching realtime frame within {CHECK_TIMEOUT_S:g} s")
    return frame


def _meeting_join(ctx: _Context) -> str:
    alice = ctx.user("alice")
    room = ctx.conversation()
    grant = _expect(ctx.supabase.livekit_token(room, token=alice.token), 200, f"{ctx.names.livekit_function} function")
    livekit_url = str(grant["url"]).rstrip("/")
    # The function names the LiveKit server: it must pass the same safety rule (and allow-list) as the target itself.
    what = f"the LiveKit URL the {ctx.names.livekit_function} function returned"
    check_url(ctx.target, what, livekit_url, ctx.confirm_remote)
    started = time.perf_counter()
    sock = websocket.create_connection(
        f"{livekit_url}/rtc",
        header=[f"Authorization: Bearer {grant['token']}"],
        timeout=CHECK_TIMEOUT_S,
        redirect_limit=NO_REDIRECTS,
    )
    try:
        opcode, frame = sock.recv_data(control_frame=False)
        if opcode != websocket.ABNF.OPCODE_BINARY:
            raise CheckFailed(f"/rtc's first frame is not binary protobuf (opcode {opcode})")
        response = proto_rtc.SignalResponse.FromString(bytes(frame))
        if response.WhichOneof("message") != "join":
            raise CheckFailed(f"/rtc's first message is {response.WhichOneof('message')!r}, expected 'join'")
        join_ms = (time.perf_counter() - started) * 1000
        if response.join.room.name != room:
            raise CheckFailed(f"joined room {response.join.room.name!r}, expected {room!r}")
        leave = proto_rtc.LeaveRequest(
            reason=proto_models.DisconnectReason.CLIENT_INITIATED, action=proto_rtc.LeaveRequest.DISCONNECT
        )
        sock.send_binary(proto_rtc.SignalRequest(leave=leave).SerializeToString())
    finally:
        sock.close()
    return f"got a LiveKit token and joined the meeting room over /rtc in {join_ms:.0f} ms"


def _file_transfer(ctx: _Context) -> str:
    alice, bob = ctx.user("alice"), ctx.user("bob")
    path = f"{ctx.conversation()}/smoke-{uuid.uuid4().hex[:8]}.bin"
    data = secrets.token_bytes(FILE_BYTES)
    _expect(ctx.supabase.upload(path, data, token=alice.token), 200, "upload")
    ctx.uploaded.append(path)
    download = ctx.supabase.download(path, token=bob.token)
    if download.status_code != 200:
        raise CheckFailed(f"download answered {download.status_code}: {_redact(download.text[:200])}")
    if download.content != data:
        raise CheckFailed(f"downloaded {len(download.content)} bytes that differ from the {len(data)} uploaded")
    return f"alice uploaded {FILE_BYTES // 1024} KiB to the conversation; bob downloaded the same bytes"


def _rls_stranger(ctx: _Context) -> str:
    stranger, alice = ctx.user("stranger"), ctx.user("alice")
    conversation_id = ctx.conversation()
    names, select = ctx.names, ctx.supabase.select
    in_conversation = {"conversation_id": api.eq(conversation_id)}
    own = _expect(select(names.messages, columns="id", filters=in_conversation, token=alice.token), 200, "read")
    if not own:
        raise CheckFailed("the conversation's own member reads no messages, so the probe would prove nothing")
    seen = _expect(select(names.messages, columns="id", filters=in_conversation, token=stranger.token), 200, "read")
    convs = _expect(
        select(names.conversations, filters={"id": api.eq(conversation_id)}, token=stranger.token), 200, "read"
    )
    if seen or convs:
        raise CheckFailed(f"a stranger read {len(seen)} message(s) and {len(convs)} conversation(s) of another user")
    return f"a stranger reads 0 of the conversation's {len(own)} message(s) (its member reads them)"


def _webshell_get(ctx: _Context, path: str) -> httpx.Response:
    response = ctx.http.get(f"{ctx.target.web_url}{path}", headers={"Accept-Encoding": "br, gzip"})
    if response.status_code != 200:
        raise CheckFailed(f"GET {path} answered {response.status_code}")
    return response


def _web_compression(ctx: _Context) -> str:
    response = _webshell_get(ctx, "/main.dart.js")
    encoding = response.headers.get("content-encoding", "identity")
    if encoding not in ("br", "gzip"):
        raise CheckFailed(f"main.dart.js served with content-encoding {encoding!r} to a br/gzip client")
    return f"main.dart.js served {encoding}-compressed ({len(response.content):,} bytes decoded)"


def _web_cache_headers(ctx: _Context) -> str:
    index = _webshell_get(ctx, "/index.html")
    index_cache = index.headers.get("cache-control", "")
    if "no-cache" not in index_cache and "max-age=0" not in index_cache:
        raise CheckFailed(f"index.html has Cache-Control {index_cache!r}; the shell must be revalidated (no-cache)")
    hashed = re.search(r'"(/assets/[^"]+\.[0-9a-f]{8,}\.[a-z0-9]+)"', index.text)
    if hashed is None:
        raise CheckFailed("index.html references no content-hashed /assets/ file to check")
    asset_cache = _webshell_get(ctx, hashed.group(1)).headers.get("cache-control", "")
    if "immutable" not in asset_cache and "max-age=31536000" not in asset_cache:
        raise CheckFailed(f"{hashed.group(1)} has Cache-Control {asset_cache!r}; hashed assets should be immutable")
    return f"index.html {index_cache!r}; hashed assets {asset_cache!r}"


SECURITY_HEADERS = ("strict-transport-security", "x-content-type-options", "content-security-policy")


def _web_security_headers(ctx: _Context) -> str:
    index = _webshell_get(ctx, "/index.html")
    missing = [h for h in SECURITY_HEADERS if h not in index.headers]
    if missing:
        raise CheckFailed(f"index.html lacks {', '.join(missing)}")
    if index.headers["x-content-type-options"].lower() != "nosniff":
        raise CheckFailed(f"X-Content-Type-Options is {index.headers['x-content-type-options']!r}, not 'nosniff'")
    return "HSTS, nosniff and a Content-Security-Policy on the web shell"


def _china_routing(ctx: _Context) -> str:
    seen = {}
    for country, expected in (("CN", JAPAN), ("SG", SINGAPORE)):
        response = ctx.supabase.select(ctx.names.conversations, columns="id", limit=1, headers=viewer_headers(country))
        region = ctx.supabase.region(response)
        if response.status_code != 200 or region != expected:
            raise CheckFailed(f"{country} viewers served by {region!r} (status {response.status_code}), not {expected}")
        seen[country] = region
    return f"CN viewers served by {seen['CN']}, SG viewers by {seen['SG']}"


_CHECKS: list[tuple[str, Callable[[_Context], str]]] = [
    ("health", _health),
    ("sign_in", _sign_in),
    ("message_realtime", _message_realtime),
    ("meeting_join", _meeting_join),
    ("file_transfer", _file_transfer),
    ("rls_stranger", _rls_stranger),
    ("web_compression", _web_compression),
    ("web_cache_headers", _web_cache_headers),
    ("web_security_headers", _web_security_headers),
    ("china_routing", _china_routing),
]
CHECK_NAMES = [name for name, _ in _CHECKS]


def run_checklist(target: Target, *, china: bool | None = None, confirm_remote: bool = False) -> list[CheckResult]:
    """Every check in order. `china` (default: only on the reference stack, whose edge takes the viewer country
    from a header) adds the China routing check; a real CloudFront sets that header itself."""
    check_allowed(target, confirm_remote)  # before the first request, whoever calls
    with_china = target.reference if china is None else china
    results: list[CheckResult] = []
    names = target.config.names if target.config is not None else Names()
    anon_key = target.env.get("SUPABASE_ANON_KEY", "")
    service_key = target.env.get("SUPABASE_SERVICE_ROLE_KEY", "")
    with httpx.Client(timeout=CHECK_TIMEOUT_S) as http:
        supabase = SupabaseClient(target.url, anon_key, names=names, http=http)
        admin = supabase.with_key(service_key) if service_key else None
        ctx = _Context(target=target, http=http, supabase=supabase, admin=admin, confirm_remote=confirm_remote)
        try:
            for name, check in _CHECKS:
                if name == "china_routing" and not with_china:
                    continue
                results.append(_timed(name, check, ctx))
        finally:
            _cleanup(ctx)
    return results


def _timed(name: str, check: Callable[[_Context], str], ctx: _Context) -> CheckResult:
    started = time.perf_counter()
    try:
        message, passed = check(ctx), True
    except CheckFailed as exc:
        message, passed = str(exc), False
    except (httpx.HTTPError, websocket.WebSocketException, OSError, KeyError, ValueError, TypeError) as exc:
        message, passed = f"{type(exc).__name__}: {_redact(str(exc))[:300]}", False
    return CheckResult(name, passed, message, (time.perf_counter() - started) * 1000)


def _cleanup(ctx: _Context) -> None:
    """Best effort: the uploaded files and the conversation (their owner and creator may delete them; its messages
    and memberships go with it), then the users (with the service key)."""
    with contextlib.suppress(httpx.HTTPError, CheckFailed):
        alice = ctx.user("alice")
        if ctx.uploaded:
            ctx.supabase.remove(ctx.uploaded, token=alice.token)
    with contextlib.suppress(httpx.HTTPError, CheckFailed):
        if ctx.conversation_id:
            alice = ctx.user("alice")
            ctx.supabase.delete(ctx.names.conversations, filters={"id": api.eq(ctx.conversation_id)}, token=alice.token)
    if ctx.admin is None:
        return
    for user in ctx.users.values():
        if user.id:
            with contextlib.suppress(httpx.HTTPError):
                ctx.admin.admin_delete_user(user.id)
