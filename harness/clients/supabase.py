"""`SupabaseSession`: one user's gevent client for Supabase auth, REST, Storage and Edge Functions.

    user class ──► SupabaseSession ──► Transport (FastHttpSession) ──► /auth/v1 /rest/v1 /storage/v1 /functions/v1
                        │ keeps the user's tokens; refreshes < `refresh_margin_s` before expiry, or once on a 401
                        └─► token listeners (RealtimeClient pushes the new token to its channels)

Every call fires one Locust `request` event (`AUTH`, `REST`, `STORAGE`, `FUNC`) with a name without ids
(`REST select messages`, `STORAGE upload`) and returns a `Reply`; failures are values, never raised, so a user
class decides what a failure means. Importing this module loads Locust, which monkey-patches the process with
gevent: use it only in Locust workers, gevent scripts and `tests/gevent/`.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from harness.clients.events import Reporter, RequestEvent, RequestFailed
from harness.clients.http import Reply, Transport

REFRESH_MARGIN_S = 60.0
"""Refresh the access token when less than this is left before it expires (supabase-js uses a similar margin)."""
DUPLICATE = frozenset({(409, "23505")})
"""A retried insert that hits a unique key (e.g. `client_msg_id` per sender) was already delivered."""
CLIENT_INFO = "harness-gevent/1"

Filters = Mapping[str, str] | Sequence[tuple[str, str]]
"""PostgREST filters as query pairs: {"conversation_id": "eq.<uuid>", "created_at": "gt.2024-01-01"}."""
TokenListener = Callable[[str], None]


class SupabaseSession:
    """A signed-in (or anonymous) user of one Supabase project, over one keep-alive HTTP connection pool."""

    def __init__(
        self,
        base_url: str,
        anon_key: str,
        *,
        environment: Any = None,
        request_event: RequestEvent | None = None,
        user_class: str = "",
        group: str = "",
        headers: Mapping[str, str] | None = None,
        bucket: str = "attachments",
        refresh_margin_s: float = REFRESH_MARGIN_S,
        network_timeout_s: float = 60.0,
        connection_timeout_s: float = 60.0,
        client_pool: Any = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.anon_key = anon_key
        self.bucket = bucket
        """Storage bucket used when a call names none (the app's is `attachments`)."""
        self.refresh_margin_s = refresh_margin_s
        self.reporter = Reporter(
            environment=environment, request_event=request_event, user_class=user_class, group=group
        )
        self.transport = Transport(
            self.base_url,
            self.reporter,
            headers=headers,
            network_timeout_s=network_timeout_s,
            connection_timeout_s=connection_timeout_s,
            client_pool=client_pool,
        )
        self.access_token: str | None = None
        self.refresh_token: str | None = None
        self.expires_at: float = 0.0
        self.user_id: str | None = None
        self.token_listeners: list[TokenListener] = []
        """Called with each new access token (after sign-in and every refresh)."""
        self._refresh_lock = threading.Lock()  # gevent-patched: one refresh at a time per session

    @property
    def headers(self) -> dict[str, str]:
        """Sent on every HTTP request (auth, REST, Storage, functions); a call's own headers win."""
        return self.transport.headers

    # -- auth ------------------------------------------------------------------------------------------------------
    def _auth_headers(self, bearer: str | None = None) -> dict[str, str]:
        return {
            "apikey": self.anon_key,
            "Authorization": f"Bearer {bearer or self.anon_key}",
            "Content-Type": "application/json;charset=UTF-8",
            "X-Supabase-Api-Version": "2024-01-01",
            "X-Client-Info": CLIENT_INFO,
        }

    def sign_in(self, email: str, password: str) -> Reply:
        """Password grant (`AUTH sign-in`); on success the session holds the user's tokens."""
        body = json.dumps({"email": email, "password": password, "gotrue_meta_security": {"captcha_token": None}})
        reply = self.transport.call(
            "AUTH", "sign-in", "POST", "/auth/v1/token?grant_type=password", headers=self._auth_headers(), body=body
        )
        self._take_session(reply)
        return reply

    def sign_up(self, email: str, password: str, data: Mapping[str, Any] | None = None) -> Reply:
        """Email sign-up (`AUTH sign-up`); with autoconfirm the reply is a session and the user is signed in."""
        body = json.dumps({"email": email, "password": password, "data": dict(data or {})})
        reply = self.transport.call(
            "AUTH", "sign-up", "POST", "/auth/v1/signup", headers=self._auth_headers(), body=body
        )
        if reply.ok and isinstance(reply.body, dict) and "access_token" in reply.body:
            self._take_session(reply)
        return reply

    def admin_create_user(
        self, service_role_key: str, email: str, password: str, user_metadata: Mapping[str, Any] | None = None
    ) -> Reply:
        """Create a confirmed user with the service-role key (`AUTH admin create-user`): for seeding test users."""
        headers = self._auth_headers(service_role_key)
        headers["apikey"] = service_role_key
        body = {"email": email, "password": password, "email_confirm": True, "user_metadata": dict(user_metadata or {})}
        return self.transport.call(
            "AUTH", "admin create-user", "POST", "/auth/v1/admin/users", headers=headers, body=json.dumps(body)
        )

    def refresh(self) -> Reply:
        """Refresh-token grant (`AUTH refresh`); refresh tokens rotate, so the new one replaces the old."""
        if not self.refresh_token:
            failure = RequestFailed("AUTH refresh", 0, "no_session", "sign in before refreshing")
            return Reply(0, None, 0.0, error=failure)
        body = json.dumps({"refresh_token": self.refresh_token})
        reply = self.transport.call(
            "AUTH",
            "refresh",
            "POST",
            "/auth/v1/token?grant_type=refresh_token",
            headers=self._auth_headers(),
            body=body,
        )
        self._take_session(reply)
        return reply

    def set_session(self, access_token: str, refresh_token: str | None = None, expires_at: float | None = None) -> None:
        """Adopt tokens obtained elsewhere (e.g. a seeding step); `expires_at` is read from the JWT when omitted."""
        self.access_token = access_token
        self.refresh_token = refresh_token
        claims = _jwt_claims(access_token)
        self.expires_at = float(expires_at if expires_at is not None else claims.get("exp", 0))
        self.user_id = claims.get("sub") or self.user_id
        self._notify(access_token)

    def _take_session(self, reply: Reply) -> None:
        body = reply.body
        if not reply.ok or not isinstance(body, dict) or "access_token" not in body:
            return
        self.access_token = str(body["access_token"])
        self.refresh_token = body.get("refresh_token") or self.refresh_token
        expires_at = body.get("expires_at")
        self.expires_at = float(expires_at) if expires_at else time.time() + float(body.get("expires_in", 3600))
        user = body.get("user")
        if isinstance(user, dict) and user.get("id"):
            self.user_id = str(user["id"])
        self._notify(self.access_token)

    def _notify(self, token: str) -> None:
        for listener in list(self.token_listeners):
            listener(token)

    @property
    def seconds_left(self) -> float:
        """Seconds before the access token expires (negative when it has; 0 when signed out)."""
        return self.expires_at - time.time() if self.access_token else 0.0

    def ensure_fresh(self) -> None:
        """Refresh now if the token expires within `refresh_margin_s` (one greenlet refreshes; others wait)."""
        if not self.refresh_token or self.seconds_left >= self.refresh_margin_s:
            return
        expires_before = self.expires_at
        with self._refresh_lock:
            if self.expires_at == expires_before:  # nobody refreshed while we waited
                self.refresh()

    # -- shared call path with bearer, refresh and one retry on 401 ------------------------------------------------
    def _bearer(self) -> str:
        return self.access_token or self.anon_key

    def _call(
        self,
        request_type: str,
        name: str,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | str | None = None,
        binary: bool = False,
        context: dict[str, Any] | None = None,
        ok_errors: frozenset[tuple[int, str]] = frozenset(),
    ) -> Reply:
        self.ensure_fresh()
        for attempt in range(2):
            all_headers = {"apikey": self.anon_key, "Authorization": f"Bearer {self._bearer()}", **(headers or {})}
            reply = self.transport.call(
                request_type,
                name,
                method,
                path,
                headers=all_headers,
                body=body,
                binary=binary,
                context=context,
                ok_errors=ok_errors,
            )
            if reply.status != 401 or attempt or not self.refresh_token:
                return reply
            used = self.access_token
            with self._refresh_lock:
                if self.access_token == used and not self.refresh().ok:
                    return reply
        return reply

    # -- REST (PostgREST) ------------------------------------------------------------------------------------------
    @staticmethod
    def _rest_headers(prefer: str | None = None, single: bool = False) -> dict[str, str]:
        headers = {"Accept-Profile": "public", "Content-Profile": "public", "Content-Type": "application/json"}
        if prefer:
            headers["Prefer"] = prefer
        if single:
            headers["Accept"] = "application/vnd.pgrst.object+json"
        return headers

    @staticmethod
    def _query(params: Iterable[tuple[str, str]]) -> str:
        pairs = list(params)
        return "?" + urlencode(pairs, quote_via=quote) if pairs else ""

    def select(
        self,
        table: str,
        *,
        columns: str = "*",
        filters: Filters = (),
        order: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        single: bool = False,
        count: str | None = None,
    ) -> Reply:
        """`GET /rest/v1/<table>?select=…` (`REST select <table>`); `order` like "created_at.desc"."""
        params = [("select", columns), *_pairs(filters)]
        if order:
            params.append(("order", order))
        if limit is not None:
            params.append(("limit", str(limit)))
        if offset is not None:
            params.append(("offset", str(offset)))
        prefer = f"count={count}" if count else None
        path = f"/rest/v1/{table}{self._query(params)}"
        return self._call("REST", f"select {table}", "GET", path, headers=self._rest_headers(prefer, single))

    def insert(
        self,
        table: str,
        rows: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        returning: bool = True,
        upsert: bool = False,
        on_conflict: str | None = None,
        duplicate_ok: bool = False,
    ) -> Reply:
        """`POST /rest/v1/<table>` (`REST insert <table>`). With `duplicate_ok`, 409 23505 counts as delivered
        (the reply is marked `duplicate`): how a retried message send with the same `client_msg_id` is judged."""
        prefer = ["return=representation" if returning else "return=minimal"]
        if upsert:
            prefer.append("resolution=merge-duplicates")
        params = [("on_conflict", on_conflict)] if on_conflict else []
        if not isinstance(rows, Mapping):
            columns = sorted({key for row in rows for key in row})
            params.append(("columns", ",".join(f'"{c}"' for c in columns)))
        path = f"/rest/v1/{table}{self._query(params)}"
        return self._call(
            "REST",
            f"insert {table}",
            "POST",
            path,
            headers=self._rest_headers(",".join(prefer)),
            body=json.dumps(rows if isinstance(rows, Mapping) else list(rows)),
            ok_errors=DUPLICATE if duplicate_ok else frozenset(),
        )

    def update(self, table: str, values: Mapping[str, Any], *, filters: Filters, returning: bool = True) -> Reply:
        """`PATCH /rest/v1/<table>?<filters>` (`REST update <table>`)."""
        prefer = "return=representation" if returning else "return=minimal"
        path = f"/rest/v1/{table}{self._query(_pairs(filters))}"
        return self._call(
            "REST", f"update {table}", "PATCH", path, headers=self._rest_headers(prefer), body=json.dumps(dict(values))
        )

    def delete(self, table: str, *, filters: Filters, returning: bool = False) -> Reply:
        """`DELETE /rest/v1/<table>?<filters>` (`REST delete <table>`)."""
        prefer = "return=representation" if returning else "return=minimal"
        path = f"/rest/v1/{table}{self._query(_pairs(filters))}"
        return self._call("REST", f"delete {table}", "DELETE", path, headers=self._rest_headers(prefer))

    # -- Storage ---------------------------------------------------------------------------------------------------
    def _object_path(self, path: str, bucket: str | None) -> str:
        return f"{bucket or self.bucket}/{quote(path.lstrip('/'))}"

    def upload(
        self,
        path: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        multipart: bool = True,
        upsert: bool = False,
        cache_control_s: int = 3600,
        bucket: str | None = None,
    ) -> Reply:
        """`POST /storage/v1/object/<bucket>/<path>` (`STORAGE upload`): multipart as storage3 sends it, or the raw
        bytes as the body. The app names objects `<conversation_id>/<file>`."""
        headers = {"x-upsert": "true" if upsert else "false"}
        if multipart:
            body, headers["Content-Type"] = _multipart(path.rsplit("/", 1)[-1], data, content_type, cache_control_s)
        else:
            body = data
            headers["Content-Type"] = content_type
            headers["cache-control"] = f"max-age={cache_control_s}"
        return self._call(
            "STORAGE",
            "upload",
            "POST",
            f"/storage/v1/object/{self._object_path(path, bucket)}",
            headers=headers,
            body=body,
            context={"bytes_sent": len(data)},
        )

    def download(self, path: str, *, bucket: str | None = None) -> Reply:
        """`GET /storage/v1/object/<bucket>/<path>` (`STORAGE download`); `body` is the bytes."""
        return self._download("download", f"/storage/v1/object/{self._object_path(path, bucket)}")

    def _download(self, name: str, url: str) -> Reply:
        return self._call("STORAGE", name, "GET", url, binary=True)

    def sign(self, path: str, *, expires_in_s: int = 60, bucket: str | None = None) -> Reply:
        """`POST /storage/v1/object/sign/<bucket>/<path>` (`STORAGE sign`); `body["signedURL"]` is relative to the
        storage root, as the real service answers; pass it to `fetch_signed`."""
        return self._call(
            "STORAGE",
            "sign",
            "POST",
            f"/storage/v1/object/sign/{self._object_path(path, bucket)}",
            headers={"Content-Type": "application/json"},
            body=json.dumps({"expiresIn": str(expires_in_s)}),
        )

    def fetch_signed(self, signed_url: str) -> Reply:
        """GET a signed URL (`STORAGE fetch signed`): absolute, or relative to `/storage/v1` as `sign` returns it."""
        url = signed_url if "://" in signed_url else "/storage/v1/" + signed_url.lstrip("/")
        return self._download("fetch signed", url)

    def list(self, prefix: str = "", *, limit: int = 100, offset: int = 0, bucket: str | None = None) -> Reply:
        """`POST /storage/v1/object/list/<bucket>` (`STORAGE list`)."""
        body = {"prefix": prefix, "limit": limit, "offset": offset, "sortBy": {"column": "name", "order": "asc"}}
        return self._call(
            "STORAGE",
            "list",
            "POST",
            f"/storage/v1/object/list/{bucket or self.bucket}",
            headers={"Content-Type": "application/json"},
            body=json.dumps(body),
        )

    def remove(self, paths: Sequence[str], *, bucket: str | None = None) -> Reply:
        """`DELETE /storage/v1/object/<bucket>` with `{"prefixes": [...]}` (`STORAGE delete`)."""
        return self._call(
            "STORAGE",
            "delete",
            "DELETE",
            f"/storage/v1/object/{bucket or self.bucket}",
            headers={"Content-Type": "application/json"},
            body=json.dumps({"prefixes": list(paths)}),
        )

    # -- Edge Functions --------------------------------------------------------------------------------------------
    def invoke(self, function: str, body: Mapping[str, Any] | None = None) -> Reply:
        """`POST /functions/v1/<function>` with a JSON body (`FUNC <function>`)."""
        return self._call(
            "FUNC",
            function,
            "POST",
            f"/functions/v1/{function}",
            headers={"Content-Type": "application/json"},
            body=json.dumps(dict(body or {})),
        )

    def livekit_token(self, room: str) -> Reply:
        """The app's `livekit-token` function: `{"room": conversation_id}` → `{"token", "url"}`."""
        return self.invoke("livekit-token", {"room": room})

    def close(self) -> None:
        self.transport.close()


# -- helpers ------------------------------------------------------------------------------------------------------
def _pairs(filters: Filters) -> list[tuple[str, str]]:
    return list(filters.items()) if isinstance(filters, Mapping) else list(filters)


def _multipart(filename: str, data: bytes, content_type: str, cache_control_s: int) -> tuple[bytes, str]:
    """storage3's form: `cacheControl`, then `file` (PROTOCOLS.md §5.1). Returns (body, Content-Type)."""
    boundary = uuid.uuid4().hex
    safe_name = filename.replace('"', "%22").replace("\r", "").replace("\n", "")
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="cacheControl"\r\n\r\n{cache_control_s}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _jwt_claims(token: str) -> dict[str, Any]:
    """Read a JWT's claims without verifying it (the client only needs `exp` and `sub`; the server verifies)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}
