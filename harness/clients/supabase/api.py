"""Supabase's wire protocol as data: paths, headers, query strings, bodies and Realtime (Phoenix) frames.

    SupabaseSession (gevent, session.py) ──┐
    SupabaseClient (httpx, sync.py) ───────┼──► api: path / header / query / body / frame builders ◄── Names
    smoke, users, target check (run/) ─────┘

The one module that spells the protocol (docs/protocols.md §1-§6), so the gevent and httpx clients cannot drift
apart. Pure: no I/O, no gevent, no httpx; safe to import in any process. Table, bucket, function and header
names are the deployment's (`harness.model.target_config.Names`, HARNESS_TABLE_* ...); the defaults are the reference
stack's.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from harness.model.target_config import Names

DEFAULT_NAMES = Names()
"""The reference stack's (and the app's) table, bucket, function and header names."""

# ---- paths (docs/protocols.md §1) ---------------------------------------------------------------------------------

AUTH = "/auth/v1"
REST = "/rest/v1"
STORAGE = "/storage/v1"
FUNCTIONS = "/functions/v1"
REALTIME = "/realtime/v1/websocket"
VSN = "1.0.0"
"""Phoenix serializer realtime-py speaks (JSON objects; §4.1)."""

AUTH_HEALTH = f"{AUTH}/health"
AUTH_SETTINGS = f"{AUTH}/settings"
"""GoTrue's public settings (no user needed): what supabase-js reads first; a cheap auth round trip."""
SIGN_UP = f"{AUTH}/signup"
SIGN_IN = f"{AUTH}/token?grant_type=password"
REFRESH = f"{AUTH}/token?grant_type=refresh_token"
ADMIN_USERS = f"{AUTH}/admin/users"


def query(params: Iterable[tuple[str, str]]) -> str:
    """`?a=1&b=2` (percent-encoded as postgrest-py does), or "" when there are none."""
    return _encoded(tuple(params))


@functools.lru_cache(maxsize=4096)
def _encoded(pairs: tuple[tuple[str, str], ...]) -> str:
    # Load users repeat the same few queries (a conversation's history page): percent-encoding each one anew was a
    # measurable share of the client layer's cost per request (docs/BENCHMARKS.md, "Side by side").
    return "?" + urlencode(pairs, quote_via=quote) if pairs else ""


def admin_user(user_id: str) -> str:
    """One user in the admin API (GET/PUT/DELETE; §2.1)."""
    return f"{ADMIN_USERS}/{quote(user_id)}"


def admin_users_page(page: int, per_page: int) -> str:
    """One page of the admin user list (GoTrue pages from 1)."""
    return ADMIN_USERS + query([("page", str(page)), ("per_page", str(per_page))])


def rest(table: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """`/rest/v1/<table>?<params>` (§3.1)."""
    return f"{REST}/{table}{query(params)}"


def storage_object(bucket: str, path: str) -> str:
    """`/storage/v1/object/<bucket>/<path>`: upload (POST) and download (GET) (§5.1)."""
    return f"{STORAGE}/object/{bucket}/{quote(path.lstrip('/'))}"


def storage_sign(bucket: str, path: str) -> str:
    return f"{STORAGE}/object/sign/{bucket}/{quote(path.lstrip('/'))}"


def storage_list(bucket: str) -> str:
    return f"{STORAGE}/object/list/{bucket}"


def storage_bucket(bucket: str) -> str:
    """DELETE with `{"prefixes": [...]}` removes objects."""
    return f"{STORAGE}/object/{bucket}"


def signed_url(url: str) -> str:
    """A signed URL as `sign` returns it (relative to `/storage/v1`), or an absolute one, made fetchable."""
    return url if "://" in url else f"{STORAGE}/" + url.lstrip("/")


def function(name: str) -> str:
    """`/functions/v1/<name>` (§6)."""
    return f"{FUNCTIONS}/{name}"


def realtime_url(base_url: str, apikey: str, params: Mapping[str, str] | None = None) -> str:
    """`ws(s)://<host>/realtime/v1/websocket?apikey=…&vsn=1.0.0`, as realtime-py builds it from the project URL
    (§4.1). The key is in the URL: never log it."""
    parts = urlsplit(base_url.rstrip("/"))
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    encoded = urlencode({"apikey": apikey, **(params or {}), "vsn": VSN})
    return f"{scheme}://{parts.netloc}{parts.path}{REALTIME}?{encoded}"


# ---- PostgREST filters and parameters (§3.1) -----------------------------------------------------------------------

Filters = Mapping[str, str] | Sequence[tuple[str, str]]
"""PostgREST filters as query pairs: {"conversation_id": "eq.<uuid>", "created_at": "gt.2024-01-01"}."""


def pairs(filters: Filters) -> list[tuple[str, str]]:
    return list(filters.items()) if isinstance(filters, Mapping) else list(filters)


def eq(value: str) -> str:
    return f"eq.{value}"


def in_(values: Iterable[str]) -> str:
    """`in.(a,b,c)`; callers keep lists short (URLs over ~8 KB are refused by common proxies)."""
    return "in.(" + ",".join(values) + ")"


def like(pattern: str) -> str:
    """`like.<pattern>` (`*` is the wildcard in PostgREST URLs)."""
    return f"like.{pattern}"


def select_params(
    columns: str = "*",
    filters: Filters = (),
    *,
    order: str | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> list[tuple[str, str]]:
    """`select=…`, the filters, then `order` (like "created_at.desc"), `limit`, `offset`."""
    params = [("select", columns), *pairs(filters)]
    if order:
        params.append(("order", order))
    if limit is not None:
        params.append(("limit", str(limit)))
    if offset is not None:
        params.append(("offset", str(offset)))
    return params


def insert_params(
    rows: Mapping[str, Any] | Sequence[Mapping[str, Any]], on_conflict: str | None = None
) -> list[tuple[str, str]]:
    """`on_conflict`, and for an array the `columns` postgrest-py names (the union of the rows' keys)."""
    params = [("on_conflict", on_conflict)] if on_conflict else []
    if not isinstance(rows, Mapping):
        columns = sorted({key for row in rows for key in row})
        params.append(("columns", ",".join(f'"{c}"' for c in columns)))
    return params


# ---- headers (§1, §2.1, §3.1) ------------------------------------------------------------------------------------

API_VERSION = "2024-01-01"
CLIENT_INFO = "harness/1"
DUPLICATE = frozenset({(409, "23505")})
"""(status, code) of a unique-key violation: a retried insert (same `client_msg_id`) was already delivered."""


def key_headers(apikey: str, bearer: str | None = None) -> dict[str, str]:
    """The project key, and the bearer: a user's access token, else the key itself (§1)."""
    return {"apikey": apikey, "Authorization": f"Bearer {bearer or apikey}"}


def auth_headers(apikey: str, bearer: str | None = None, client_info: str = CLIENT_INFO) -> dict[str, str]:
    """What supabase_auth sends on every call (§2.1)."""
    return {
        **key_headers(apikey, bearer),
        "Content-Type": "application/json;charset=UTF-8",
        "X-Supabase-Api-Version": API_VERSION,
        "X-Client-Info": client_info,
    }


def prefer(*, returning: bool = True, upsert: bool = False, count: str | None = None) -> str:
    """A `Prefer` value: `return=representation|minimal`, merge duplicates on upsert, `count=exact|…`."""
    parts = ["return=representation" if returning else "return=minimal"]
    if upsert:
        parts.append("resolution=merge-duplicates")
    if count:
        parts.append(f"count={count}")
    return ",".join(parts)


def rest_headers(prefer: str | None = None, single: bool = False) -> dict[str, str]:
    """postgrest-py's schema headers, plus `Prefer` and the single-object `Accept` when asked."""
    headers = {"Accept-Profile": "public", "Content-Profile": "public", "Content-Type": "application/json"}
    if prefer:
        headers["Prefer"] = prefer
    if single:
        headers["Accept"] = "application/vnd.pgrst.object+json"
    return headers


def origin_region(headers: Mapping[str, str], names: Names = DEFAULT_NAMES) -> str | None:
    """The region that served a response (HARNESS_REGION_HEADER), None when the response does not say."""
    return headers.get(names.region_header) or None


# ---- bodies (§2.1, §5.1) -----------------------------------------------------------------------------------------


def password_body(email: str, password: str) -> dict[str, Any]:
    """Password sign-in as supabase_auth sends it."""
    return {"email": email, "password": password, "gotrue_meta_security": {"captcha_token": None}}


def sign_up_body(email: str, password: str, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"email": email, "password": password, "data": dict(data or {})}


def admin_user_body(email: str, password: str, user_metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A confirmed user (no confirmation e-mail), as seeding needs."""
    return {"email": email, "password": password, "email_confirm": True, "user_metadata": dict(user_metadata or {})}


def multipart(filename: str, data: bytes, content_type: str, cache_control_s: int = 3600) -> tuple[bytes, str]:
    """storage3's upload form: `cacheControl`, then `file` (§5.1). Returns (body, Content-Type)."""
    boundary = uuid.uuid4().hex
    safe_name = filename.replace('"', "%22").replace("\r", "").replace("\n", "")
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="cacheControl"\r\n\r\n{cache_control_s}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def list_body(prefix: str, limit: int, offset: int) -> dict[str, Any]:
    return {"prefix": prefix, "limit": limit, "offset": offset, "sortBy": {"column": "name", "order": "asc"}}


# ---- Realtime frames: Phoenix vsn 1.0.0 (§4.2, §4.3) --------------------------------------------------------------

PHOENIX = "phoenix"
"""Topic of heartbeats."""


def topic(name: str) -> str:
    return f"realtime:{name}"


def frame(topic: str, event: str, payload: Mapping[str, Any], ref: str | None, join_ref: str | None = None) -> str:
    """One client frame, encoded (the client sends `join_ref`; the server never does)."""
    return json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref, "join_ref": join_ref})


def postgres_binding(table: str, event: str = "*", filter: str | None = None, schema: str = "public") -> dict[str, Any]:
    """One postgres_changes binding, e.g. `postgres_binding("messages", "INSERT", "conversation_id=eq.<id>")`."""
    binding = {"event": event, "schema": schema, "table": table}
    if filter:
        binding["filter"] = filter
    return binding


def message_inserts(conversation_id: str, names: Names = DEFAULT_NAMES) -> dict[str, Any]:
    """New messages of one conversation: the binding the app subscribes with."""
    return postgres_binding(names.messages, "INSERT", f"conversation_id={eq(conversation_id)}")


def join_config(
    postgres_changes: Sequence[Mapping[str, Any]] = (),
    *,
    broadcast_ack: bool = False,
    broadcast_self: bool = False,
    presence_key: str | None = None,
    private: bool = False,
) -> dict[str, Any]:
    """A channel's join config as realtime-py sends it; presence is enabled when `presence_key` is set."""
    return {
        "broadcast": {"ack": broadcast_ack, "self": broadcast_self},
        "presence": {"key": presence_key or "", "enabled": presence_key is not None},
        "private": private,
        "postgres_changes": [dict(b) for b in postgres_changes],
    }


def join_payload(config: Mapping[str, Any], access_token: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"config": dict(config)}
    if access_token:
        payload["access_token"] = access_token
    return payload


def join(topic: str, ref: str, config: Mapping[str, Any], access_token: str | None) -> str:
    """`phx_join` (its `ref` is also the channel's `join_ref`)."""
    return frame(topic, "phx_join", join_payload(config, access_token), ref, ref)


def heartbeat(ref: str | None) -> str:
    return frame(PHOENIX, "heartbeat", {}, ref)


def leave(topic: str, ref: str, join_ref: str | None) -> str:
    return frame(topic, "phx_leave", {}, ref, join_ref)


def broadcast_payload(event: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """What a broadcast carries, sent and received alike: `{"type": "broadcast", "event", "payload"}`."""
    return {"type": "broadcast", "event": event, "payload": dict(payload)}


def broadcast(topic: str, event: str, payload: Mapping[str, Any], ref: str | None, join_ref: str | None) -> str:
    """A `broadcast` push; `ref` None when no ack is wanted (the server replies only with `broadcast.ack`)."""
    return frame(topic, "broadcast", broadcast_payload(event, payload), ref, join_ref)


def presence_track(topic: str, state: Mapping[str, Any], ref: str, join_ref: str | None) -> str:
    """Track presence `state` on a channel (realtime-py leaves out `"type": "presence"`; §4.2)."""
    return frame(topic, "presence", {"event": "track", "payload": dict(state)}, ref, join_ref)


def access_token(topic: str, token: str, ref: str | None, join_ref: str | None) -> str:
    """A refreshed user token for a joined channel (the server never replies; §4.2)."""
    return frame(topic, "access_token", {"access_token": token}, ref, join_ref)


def is_reply(message: Mapping[str, Any], ref: str) -> bool:
    """Whether a server frame is the `phx_reply` to the push with `ref`."""
    return message.get("event") == "phx_reply" and message.get("ref") == ref


def reply_status(message: Mapping[str, Any]) -> str:
    """The status of a `phx_reply`: "ok" or "error"."""
    payload = message.get("payload")
    return str(payload.get("status", "")) if isinstance(payload, Mapping) else ""


def change_record(message: Mapping[str, Any]) -> dict[str, Any] | None:
    """The row of a `postgres_changes` frame (`data.record`), None for any other frame."""
    if message.get("event") != "postgres_changes":
        return None
    payload = message.get("payload")
    data = payload.get("data") if isinstance(payload, Mapping) else None
    record = data.get("record") if isinstance(data, Mapping) else None
    return record if isinstance(record, dict) else None
