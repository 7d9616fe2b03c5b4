"""The smoke checklist: every user-facing flow once, in order, from the orchestrator process (httpx and plain
websocket-client; no gevent here). Each check becomes a `smoke.<name>` gate and a JUnit testcase.

    health ─► sign_in ─┬─► message_realtime   bob's realtime socket receives alice's message
                       ├─► meeting_join       livekit-token function, then the LiveKit /rtc join
                       ├─► file_transfer      alice uploads to the conversation's folder, bob downloads it
                       └─► rls_stranger       a user outside the conversation reads nothing of it
    web_compression, web_cache_headers, web_security_headers     the web shell the CDN serves
    china_routing                                                CN viewers reach Japan (reference stack only)

A check that needs an earlier one (a signed-in user, a conversation) fails with "not run: …" when that one failed.
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

from harness.model.result import SmokeCheck
from harness.run.target import Target, check_allowed

CHECK_TIMEOUT_S = 10.0
"""Longest any one network step of a check may take (HTTP call, websocket frame, realtime delivery)."""
PASSWORD = "smoke-check-pass-1"
FILE_BYTES = 64 * 1024
BUCKET = "attachments"
JAPAN = "ap-northeast-1"
SINGAPORE = "ap-southeast-1"
REGION_HEADER = "x-origin-region"

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
    users: dict[str, _User] = field(default_factory=dict)
    confirm_remote: bool = False
    conversation_id: str = ""
    message_id: str = ""

    @property
    def anon_key(self) -> str:
        return self.target.env.get("SUPABASE_ANON_KEY", "")

    @property
    def service_key(self) -> str:
        return self.target.env.get("SUPABASE_SERVICE_ROLE_KEY", "")

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        return {"apikey": self.anon_key, "Authorization": f"Bearer {token or self.anon_key}", **extra}

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
    for path in ("/auth/v1/health", "/health"):  # a Supabase project, then the reference stack's edge
        response = ctx.http.get(f"{ctx.target.url}{path}", headers=ctx.headers())
        if response.status_code == 200:
            region = response.headers.get(REGION_HEADER)
            return f"{path} answered 200" + (f" from {region}" if region else "")
    raise CheckFailed(f"neither /auth/v1/health nor /health answered 200 (last: {response.status_code})")


def _sign_in(ctx: _Context) -> str:
    tag = uuid.uuid4().hex[:10]
    for name in ("alice", "bob", "stranger"):
        user = _User(email=f"smoke-{name}-{tag}@example.test")
        body = {"email": user.email, "password": PASSWORD}
        if ctx.service_key:  # create confirmed users, as a real project with email confirmation needs
            service = {"apikey": ctx.service_key, "Authorization": f"Bearer {ctx.service_key}"}
            created = ctx.http.post(
                f"{ctx.target.url}/auth/v1/admin/users", headers=service, json={**body, "email_confirm": True}
            )
            user.id = _expect(created, 200, "admin create user")["id"]
        else:
            _expect(ctx.http.post(f"{ctx.target.url}/auth/v1/signup", headers=ctx.headers(), json=body), 200, "sign-up")
        session = _expect(
            ctx.http.post(f"{ctx.target.url}/auth/v1/token?grant_type=password", headers=ctx.headers(), json=body),
            200,
            "password sign-in",
        )
        user.token, user.id = session["access_token"], session["user"]["id"]
        ctx.users[name] = user
    return "3 users signed in with a password"


def _realtime_url(ctx: _Context) -> str:
    base = ctx.target.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return f"{base}/realtime/v1/websocket?apikey={ctx.anon_key}&vsn=1.0.0"


def _create_conversation(ctx: _Context, alice: _User, bob: _User) -> str:
    rest = f"{ctx.target.url}/rest/v1"
    prefer = ctx.headers(alice.token, Prefer="return=representation")
    rows = _expect(
        ctx.http.post(f"{rest}/conversations", headers=prefer, json={"title": "smoke", "created_by": alice.id}),
        201,
        "create conversation",
    )
    conversation_id = str(rows[0]["id"])
    for member in (alice, bob):
        body = {"conversation_id": conversation_id, "user_id": member.id}
        _expect(ctx.http.post(f"{rest}/conversation_members", headers=prefer, json=body), 201, "add member")
    return conversation_id


def _message_realtime(ctx: _Context) -> str:
    alice, bob = ctx.user("alice"), ctx.user("bob")
    ctx.conversation_id = _create_conversation(ctx, alice, bob)
    sock = websocket.create_connection(_realtime_url(ctx), timeout=CHECK_TIMEOUT_S)
    try:
        topic = f"realtime:smoke-{ctx.conversation_id}"
        change = {"event": "INSERT", "schema": "public", "table": "messages"}
        change["filter"] = f"conversation_id=eq.{ctx.conversation_id}"
        join = {
            "topic": topic,
            "event": "phx_join",
            "ref": "1",
            "join_ref": "1",
            "payload": {"config": {"postgres_changes": [change]}, "access_token": bob.token},
        }
        sock.send(json.dumps(join))
        reply = _next_frame(sock, lambda f: f.get("event") == "phx_reply" and f.get("ref") == "1")
        if reply["payload"].get("status") != "ok":
            raise CheckFailed(f"realtime join refused: {_redact(json.dumps(reply['payload']))[:200]}")
        client_msg_id = f"smoke-{uuid.uuid4().hex[:12]}"
        body = {"conversation_id": ctx.conversation_id, "sender_id": alice.id, "client_msg_id": client_msg_id}
        sent_at = time.perf_counter()
        rows = _expect(
            ctx.http.post(
                f"{ctx.target.url}/rest/v1/messages",
                headers=ctx.headers(alice.token, Prefer="return=representation"),
                json={**body, "content": "smoke check"},
            ),
            201,
            "send message",
        )
        ctx.message_id = str(rows[0]["id"])

        def delivered(frame: dict[str, Any]) -> bool:
            record = frame.get("payload", {}).get("data", {}).get("record", {})
            return frame.get("event") == "postgres_changes" and record.get("client_msg_id") == client_msg_id

        _next_frame(sock, delivered)
        delivery_ms = (time.perf_counter() - sent_at) * 1000
    finally:
        sock.close()
    return f"bob received alice's message over realtime {delivery_ms:.0f} ms after the insert was sent"


def _next_frame(sock: websocket.WebSocket, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + CHECK_TIMEOUT_S
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        frame = json.loads(sock.recv())
        if isinstance(frame, dict) and wanted(frame):
            return frame
    raise CheckFailed(f"no matching realtime frame within {CHECK_TIMEOUT_S:g} s")


def _meeting_join(ctx: _Context) -> str:
    alice = ctx.user("alice")
    room = ctx.conversation()
    grant = _expect(
        ctx.http.post(
            f"{ctx.target.url}/functions/v1/livekit-token", headers=ctx.headers(alice.token), json={"room": room}
        ),
        200,
        "livekit-token function",
    )
    livekit_url = str(grant["url"]).rstrip("/")
    # The function names the LiveKit server: it must pass the same safety rule as the target itself.
    check_allowed(Target(url=ctx.target.url, env={"LIVEKIT_URL": livekit_url}), ctx.confirm_remote)
    started = time.perf_counter()
    sock = websocket.create_connection(
        f"{livekit_url}/rtc", header=[f"Authorization: Bearer {grant['token']}"], timeout=CHECK_TIMEOUT_S
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
    url = f"{ctx.target.url}/storage/v1/object/{BUCKET}/{path}"
    files = {"file": (path.rsplit("/", 1)[1], data, "application/octet-stream")}
    _expect(ctx.http.post(url, headers=ctx.headers(alice.token), files=files), 200, "upload")
    download = ctx.http.get(url, headers=ctx.headers(bob.token))
    if download.status_code != 200:
        raise CheckFailed(f"download answered {download.status_code}: {_redact(download.text[:200])}")
    if download.content != data:
        raise CheckFailed(f"downloaded {len(download.content)} bytes that differ from the {len(data)} uploaded")
    return f"alice uploaded {FILE_BYTES // 1024} KiB to the conversation; bob downloaded the same bytes"


def _rls_stranger(ctx: _Context) -> str:
    stranger, alice = ctx.user("stranger"), ctx.user("alice")
    conversation_id = ctx.conversation()
    rest = f"{ctx.target.url}/rest/v1"
    params = {"select": "id", "conversation_id": f"eq.{conversation_id}"}
    own = _expect(ctx.http.get(f"{rest}/messages", headers=ctx.headers(alice.token), params=params), 200, "read")
    if not own:
        raise CheckFailed("the conversation's own member reads no messages, so the probe would prove nothing")
    seen = _expect(ctx.http.get(f"{rest}/messages", headers=ctx.headers(stranger.token), params=params), 200, "read")
    convs = _expect(
        ctx.http.get(
            f"{rest}/conversations", headers=ctx.headers(stranger.token), params={"id": f"eq.{conversation_id}"}
        ),
        200,
        "read",
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
        response = ctx.http.get(
            f"{ctx.target.url}/rest/v1/conversations",
            params={"select": "id", "limit": "1"},
            headers=ctx.headers(**{"CloudFront-Viewer-Country": country}),
        )
        region = response.headers.get(REGION_HEADER)
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
    with_china = target.reference if china is None else china
    results: list[CheckResult] = []
    with httpx.Client(timeout=CHECK_TIMEOUT_S) as http:
        ctx = _Context(target=target, http=http, confirm_remote=confirm_remote)
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
    """Best effort: the conversation (its creator may delete it) and the users (with the service key)."""
    with contextlib.suppress(httpx.HTTPError, CheckFailed):
        if ctx.conversation_id:
            alice = ctx.user("alice")
            ctx.http.delete(
                f"{ctx.target.url}/rest/v1/conversations",
                headers=ctx.headers(alice.token),
                params={"id": f"eq.{ctx.conversation_id}"},
            )
    if not ctx.service_key:
        return
    service = {"apikey": ctx.service_key, "Authorization": f"Bearer {ctx.service_key}"}
    for user in ctx.users.values():
        if user.id:
            with contextlib.suppress(httpx.HTTPError):
                ctx.http.delete(f"{ctx.target.url}/auth/v1/admin/users/{user.id}", headers=service)
