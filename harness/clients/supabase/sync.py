"""`SupabaseClient`: Supabase over httpx for the orchestrator process (smoke, test users, target check), and
`RealtimeSocket`: one Realtime websocket over websocket-client for a scripted round trip.

    smoke / users / target check ──► SupabaseClient(url, key, names) ──► httpx ──► auth, rest, storage, functions
                                 └─► RealtimeSocket ──► websocket-client ──► /realtime/v1/websocket (api frames)

Calls return the `httpx.Response` unjudged: each caller keeps its own errors (smoke's failed checks, provisioning's
`ProvisionError`). One client holds one key: the anon key (users' calls, with their access token as `token=`) or
the service_role key (admin calls; it bypasses row-level security). Keys and tokens go in headers only and never
in a repr. httpx is never imported into a gevent-patched process (httpcore imports trio, which fails there), so
Locust workers use `session.py` instead.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import websocket

from harness.clients.sockets import NO_REDIRECTS
from harness.clients.supabase import api
from harness.clients.supabase.api import Filters
from harness.model.target_config import Names

DEFAULT_TIMEOUT_S = 30.0


class SupabaseClient:
    """One project (`base_url`) with one key, over a shared or owned `httpx.Client`."""

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        names: Names | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_connections: int | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = key
        self.names = names or api.DEFAULT_NAMES
        """The deployment's table, bucket, function and region-header names (HARNESS_TABLE_* ...)."""
        self._owns_http = http is None
        if http is None:
            http = httpx.Client(timeout=timeout_s, limits=_limits(max_connections))
        self.http = http

    def __repr__(self) -> str:
        return f"SupabaseClient({self.base_url!r}, key='***')"

    def with_key(self, key: str, base_url: str | None = None) -> SupabaseClient:
        """Another key (or project) over the same connection pool; closing it leaves the pool open."""
        return SupabaseClient(base_url or self.base_url, key, names=self.names, http=self.http)

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    def __enter__(self) -> SupabaseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request -------------------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """`path` (from `api`) on this project, with the key and `token` (a user's access token) as the bearer."""
        all_headers = {**api.key_headers(self._key, token), **(headers or {})}
        return self.http.request(method, self.base_url + path, headers=all_headers, **kwargs)

    def region(self, response: httpx.Response) -> str | None:
        """The region that served `response` (HARNESS_REGION_HEADER), None when it does not say."""
        return api.origin_region(response.headers, self.names)

    # -- auth (docs/protocols.md §2) ---------------------------------------------------------------------------------
    def auth_health(self) -> httpx.Response:
        return self.request("GET", api.AUTH_HEALTH)

    def _auth(self, path: str, body: Mapping[str, Any], token: str | None = None) -> httpx.Response:
        headers = api.auth_headers(self._key, token)
        return self.http.post(self.base_url + path, headers=headers, content=json.dumps(body))

    def sign_up(self, email: str, password: str, data: Mapping[str, Any] | None = None) -> httpx.Response:
        """200 with a session (autoconfirm) or a bare user (§2.2)."""
        return self._auth(api.SIGN_UP, api.sign_up_body(email, password, data))

    def sign_in(self, email: str, password: str) -> httpx.Response:
        """Password grant: 200 with `access_token`, `refresh_token`, `user`."""
        return self._auth(api.SIGN_IN, api.password_body(email, password))

    def admin_create_user(
        self, email: str, password: str, user_metadata: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        """A confirmed user (service_role key): 200 with the user."""
        return self._auth(api.ADMIN_USERS, api.admin_user_body(email, password, user_metadata))

    def admin_list_users(self, page: int, per_page: int) -> httpx.Response:
        """`{"users": [...]}`, one page (from 1)."""
        return self.request("GET", api.admin_users_page(page, per_page))

    def admin_delete_user(self, user_id: str) -> httpx.Response:
        return self.request("DELETE", api.admin_user(user_id))

    # -- REST (§3) ---------------------------------------------------------------------------------------------------
    def select(
        self,
        table: str,
        *,
        columns: str = "*",
        filters: Filters = (),
        order: str | None = None,
        limit: int | None = None,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """200 with a JSON array of rows (row-level security applies to a user's `token`)."""
        path = api.rest(table, api.select_params(columns, filters, order=order, limit=limit))
        return self.request("GET", path, token=token, headers={**api.rest_headers(), **(headers or {})})

    def insert(
        self,
        table: str,
        rows: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        returning: bool = True,
        token: str | None = None,
    ) -> httpx.Response:
        """201; with `returning` the stored rows come back (ids, defaults). An array inserts a batch in one call."""
        body = rows if isinstance(rows, Mapping) else list(rows)
        return self.request(
            "POST",
            api.rest(table, api.insert_params(rows)),
            token=token,
            headers=api.rest_headers(api.prefer(returning=returning)),
            content=json.dumps(body),
        )

    def delete(self, table: str, *, filters: Filters, token: str | None = None) -> httpx.Response:
        """200/204; deletes what the filters select (and row-level security lets `token` delete)."""
        headers = api.rest_headers(api.prefer(returning=False))
        return self.request("DELETE", api.rest(table, api.pairs(filters)), token=token, headers=headers)

    # -- Storage (§5) ------------------------------------------------------------------------------------------------
    def upload(
        self,
        path: str,
        data: bytes,
        *,
        token: str | None = None,
        content_type: str = "application/octet-stream",
        bucket: str | None = None,
    ) -> httpx.Response:
        """storage3's multipart upload to `<bucket>/<path>` (default bucket: HARNESS_STORAGE_BUCKET); 200."""
        body, form_type = api.multipart(path.rsplit("/", 1)[-1], data, content_type)
        headers = {"Content-Type": form_type, "x-upsert": "false"}
        url = api.storage_object(bucket or self.names.bucket, path)
        return self.request("POST", url, token=token, headers=headers, content=body)

    def download(self, path: str, *, token: str | None = None, bucket: str | None = None) -> httpx.Response:
        """200 with the object's bytes."""
        return self.request("GET", api.storage_object(bucket or self.names.bucket, path), token=token)

    def list_objects(
        self, prefix: str, *, limit: int, offset: int = 0, token: str | None = None, bucket: str | None = None
    ) -> httpx.Response:
        """200 with one folder level under `prefix`: files (with an `id`) and folders (`id` null)."""
        url = api.storage_list(bucket or self.names.bucket)
        return self.request("POST", url, token=token, json=api.list_body(prefix, limit, offset))

    def remove(self, paths: Sequence[str], *, token: str | None = None, bucket: str | None = None) -> httpx.Response:
        """200 with the objects deleted (those the token may not delete are skipped)."""
        url = api.storage_bucket(bucket or self.names.bucket)
        return self.request("DELETE", url, token=token, json={"prefixes": list(paths)})

    # -- Edge Functions (§6) -----------------------------------------------------------------------------------------
    def invoke(self, function: str, body: Mapping[str, Any], *, token: str | None = None) -> httpx.Response:
        return self.request("POST", api.function(function), token=token, json=dict(body))

    def livekit_token(self, room: str, *, token: str) -> httpx.Response:
        """The app's token function (HARNESS_LIVEKIT_FUNCTION): 200 with `{"token", "url"}` for a member."""
        return self.invoke(self.names.livekit_function, {"room": room}, token=token)

    # -- Realtime (§4) -----------------------------------------------------------------------------------------------
    def realtime(self, timeout_s: float) -> RealtimeSocket:
        """A connected Realtime socket (the key rides in the URL, as realtime-py sends it)."""
        return RealtimeSocket(api.realtime_url(self.base_url, self._key), timeout_s=timeout_s)


def _limits(max_connections: int | None) -> httpx.Limits:
    if max_connections is None:
        return httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's default
    return httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)


class RealtimeSocket:
    """One Realtime websocket, driven step by step: join a channel, then wait for the frame you expect."""

    def __init__(self, url: str, *, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._refs = itertools.count(1)
        self.sock = websocket.create_connection(url, timeout=timeout_s, redirect_limit=NO_REDIRECTS)

    def join(self, topic: str, config: Mapping[str, Any], access_token: str | None) -> dict[str, Any] | None:
        """Send `phx_join` and return its `phx_reply` (None if none came within the timeout)."""
        ref = str(next(self._refs))
        self.sock.send(api.join(topic, ref, config, access_token))
        return self.next_frame(lambda frame: api.is_reply(frame, ref))

    def next_frame(self, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        """The next server frame `wanted` accepts, skipping others; None once `timeout_s` has passed. A socket
        that stays silent raises websocket-client's timeout."""
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            frame = json.loads(self.sock.recv())
            if isinstance(frame, dict) and wanted(frame):
                return frame
        return None

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RealtimeSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
