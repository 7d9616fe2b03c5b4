"""`SupabaseSession`: one user's gevent client for Supabase auth, REST, Storage and Edge Functions.

    user class ──► SupabaseSession ──► Transport (FastHttpSession) ──► auth, rest, storage, functions (api.py paths)
                        │ keeps the user's tokens; refreshes < `refresh_margin_s` before expiry, or once on a 401
                        └─► token listeners (RealtimeClient pushes the new token to its channels)

Every call fires one Locust `request` event (`AUTH`, `REST`, `STORAGE`, `FUNC`) with a name without ids
(`REST select messages`, `STORAGE upload`) and returns a `Reply`; failures are values, never raised, so a user
class decides what a failure means. Paths, headers and bodies come from `api` (docs/protocols.md §2-§6); the
bucket, the token function and the region header (read into each event's `origin_region`) from `Names`.
Importing this module loads Locust, which monkey-patches the process with gevent: use it only in Locust workers,
gevent scripts and `tests/gevent/`.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.clients.events import Reporter, RequestEvent, RequestFailed
from harness.clients.http import Reply, Transport
from harness.clients.supabase import api
from harness.clients.supabase.api import DUPLICATE, Filters
from harness.model.target_config import Names

REFRESH_MARGIN_S = 60.0
"""Refresh the access token when less than this is left before it expires (supabase-js uses a similar margin)."""
CLIENT_INFO = "harness-gevent/1"

TokenListener = Callable[[str], None]

__all__ = ["CLIENT_INFO", "DUPLICATE", "REFRESH_MARGIN_S", "Filters", "SupabaseSession", "TokenListener"]


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
        names: Names | None = None,
        bucket: str | None = None,
        refresh_margin_s: float = REFRESH_MARGIN_S,
        network_timeout_s: float = 60.0,
        connection_timeout_s: float = 60.0,
        client_pool: Any = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.anon_key = anon_key
        self.names = names or api.DEFAULT_NAMES
        """The deployment's table, bucket and function names (HARNESS_TABLE_* ...)."""
        self.bucket = bucket or self.names.bucket
        """Storage bucket used when a call names none (HARNESS_STORAGE_BUCKET)."""
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
            region_header=self.names.region_header,
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
        return api.auth_headers(self.anon_key, bearer, CLIENT_INFO)

    def sign_in(self, email: str, password: str) -> Reply:
        """Password grant (`AUTH sign-in`); on success the session holds the user's tokens."""
        body = json.dumps(api.password_body(email, password))
        reply = self.transport.call("AUTH", "sign-in", "POST", api.SIGN_IN, headers=self._auth_headers(), body=body)
        self._take_session(reply)
        return reply

    def sign_up(self, email: str, password: str, data: Mapping[str, Any] | None = None) -> Reply:
        """Email sign-up (`AUTH sign-up`); with autoconfirm the reply is a session and the user is signed in."""
        body = json.dumps(api.sign_up_body(email, password, data))
        reply = self.transport.call("AUTH", "sign-up", "POST", api.SIGN_UP, headers=self._auth_headers(), body=body)
        if reply.ok and isinstance(reply.body, dict) and "access_token" in reply.body:
            self._take_session(reply)
        return reply

    def admin_create_user(
        self, service_role_key: str, email: str, password: str, user_metadata: Mapping[str, Any] | None = None
    ) -> Reply:
        """Create a confirmed user with the service-role key (`AUTH admin create-user`): for seeding test users."""
        headers = api.auth_headers(service_role_key, client_info=CLIENT_INFO)
        body = json.dumps(api.admin_user_body(email, password, user_metadata))
        return self.transport.call("AUTH", "admin create-user", "POST", api.ADMIN_USERS, headers=headers, body=body)

    def refresh(self) -> Reply:
        """Refresh-token grant (`AUTH refresh`); refresh tokens rotate, so the new one replaces the old."""
        if not self.refresh_token:
            failure = RequestFailed("AUTH refresh", 0, "no_session", "sign in before refreshing")
            return Reply(0, None, 0.0, error=failure)
        body = json.dumps({"refresh_token": self.refresh_token})
        reply = self.transport.call("AUTH", "refresh", "POST", api.REFRESH, headers=self._auth_headers(), body=body)
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
            all_headers = {**api.key_headers(self.anon_key, self._bearer()), **(headers or {})}
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
        path = api.rest(table, api.select_params(columns, filters, order=order, limit=limit, offset=offset))
        prefer = f"count={count}" if count else None
        return self._call("REST", f"select {table}", "GET", path, headers=api.rest_headers(prefer, single))

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
        path = api.rest(table, api.insert_params(rows, on_conflict))
        return self._call(
            "REST",
            f"insert {table}",
            "POST",
            path,
            headers=api.rest_headers(api.prefer(returning=returning, upsert=upsert)),
            body=json.dumps(rows if isinstance(rows, Mapping) else list(rows)),
            ok_errors=DUPLICATE if duplicate_ok else frozenset(),
        )

    def update(self, table: str, values: Mapping[str, Any], *, filters: Filters, returning: bool = True) -> Reply:
        """`PATCH /rest/v1/<table>?<filters>` (`REST update <table>`)."""
        headers = api.rest_headers(api.prefer(returning=returning))
        path = api.rest(table, api.pairs(filters))
        return self._call("REST", f"update {table}", "PATCH", path, headers=headers, body=json.dumps(dict(values)))

    def delete(self, table: str, *, filters: Filters, returning: bool = False) -> Reply:
        """`DELETE /rest/v1/<table>?<filters>` (`REST delete <table>`)."""
        headers = api.rest_headers(api.prefer(returning=returning))
        path = api.rest(table, api.pairs(filters))
        return self._call("REST", f"delete {table}", "DELETE", path, headers=headers)

    # -- Storage ---------------------------------------------------------------------------------------------------
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
            body, headers["Content-Type"] = api.multipart(path.rsplit("/", 1)[-1], data, content_type, cache_control_s)
        else:
            body = data
            headers["Content-Type"] = content_type
            headers["cache-control"] = f"max-age={cache_control_s}"
        return self._call(
            "STORAGE",
            "upload",
            "POST",
            api.storage_object(bucket or self.bucket, path),
            headers=headers,
            body=body,
            context={"bytes_sent": len(data)},
        )

    def download(self, path: str, *, bucket: str | None = None, context: dict[str, Any] | None = None) -> Reply:
        """`GET /storage/v1/object/<bucket>/<path>` (`STORAGE download`); `body` is the bytes."""
        return self._download("download", api.storage_object(bucket or self.bucket, path), context)

    def _download(self, name: str, url: str, context: dict[str, Any] | None = None) -> Reply:
        return self._call("STORAGE", name, "GET", url, binary=True, context=context)

    def sign(self, path: str, *, expires_in_s: int = 60, bucket: str | None = None) -> Reply:
        """`POST /storage/v1/object/sign/<bucket>/<path>` (`STORAGE sign`); `body["signedURL"]` is relative to the
        storage root, as the real service answers; pass it to `fetch_signed`."""
        return self._call(
            "STORAGE",
            "sign",
            "POST",
            api.storage_sign(bucket or self.bucket, path),
            headers={"Content-Type": "application/json"},
            body=json.dumps({"expiresIn": str(expires_in_s)}),
        )

    def fetch_signed(self, signed_url: str, *, context: dict[str, Any] | None = None) -> Reply:
        """GET a signed URL (`STORAGE fetch signed`): absolute, or relative to `/storage/v1` as `sign` returns it."""
        return self._download("fetch signed", api.signed_url(signed_url), context)

    def list(self, prefix: str = "", *, limit: int = 100, offset: int = 0, bucket: str | None = None) -> Reply:
        """`POST /storage/v1/object/list/<bucket>` (`STORAGE list`)."""
        return self._call(
            "STORAGE",
            "list",
            "POST",
            api.storage_list(bucket or self.bucket),
            headers={"Content-Type": "application/json"},
            body=json.dumps(api.list_body(prefix, limit, offset)),
        )

    def remove(self, paths: Sequence[str], *, bucket: str | None = None) -> Reply:
        """`DELETE /storage/v1/object/<bucket>` with `{"prefixes": [...]}` (`STORAGE delete`)."""
        return self._call(
            "STORAGE",
            "delete",
            "DELETE",
            api.storage_bucket(bucket or self.bucket),
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
            api.function(function),
            headers={"Content-Type": "application/json"},
            body=json.dumps(dict(body or {})),
        )

    def livekit_token(self, room: str) -> Reply:
        """The app's token function (HARNESS_LIVEKIT_FUNCTION): `{"room": conversation_id}` → `{"token", "url"}`."""
        return self.invoke(self.names.livekit_function, {"room": room})

    def close(self) -> None:
        self.transport.close()


# -- helpers ------------------------------------------------------------------------------------------------------
def _jwt_claims(token: str) -> dict[str, Any]:
    """Read a JWT's claims without verifying it (the client only needs `exp` and `sub`; the server verifies)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}
