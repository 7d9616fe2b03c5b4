"""Start-and-probe: prove each piece of a running reference stack answers (the README's first command until the
smoke run exists, and a quick self-test after that). Supabase calls go through `harness.clients.supabase`; the
region header is `names.region_header` (the stack's default unless the caller says otherwise)."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from harness.clients.supabase import api
from harness.clients.supabase.sync import SupabaseClient
from harness.model import keys
from harness.model.target_config import Names
from harness.refstack.stack import Endpoints
from harness.scenarios.viewer import viewer_headers

PROBE_TIMEOUT_S = 5.0


@dataclass
class Probe:
    name: str
    ok: bool
    detail: str
    elapsed_ms: float


def _timed(name: str, fn: Callable[[], str]) -> Probe:
    started = time.perf_counter()
    try:
        detail, ok = fn(), True
    except (httpx.HTTPError, AssertionError, KeyError, ValueError) as exc:
        detail, ok = f"{type(exc).__name__}: {exc}", False
    return Probe(name, ok, detail, (time.perf_counter() - started) * 1000)


def probe_stack(endpoints: Endpoints, names: Names | None = None) -> list[Probe]:
    names = names or Names()
    probes: list[Probe] = []
    with httpx.Client(timeout=PROBE_TIMEOUT_S) as http:

        def anon(url: str, key: str = keys.ANON_KEY) -> SupabaseClient:
            return SupabaseClient(url, key, names=names, http=http)

        for piece in ("primary", "replica"):
            if piece in endpoints.ports:
                probes.append(_timed(f"{piece} /health", functools.partial(_health, anon(endpoints.url(piece)))))
        if "primary" in endpoints.ports:
            probes.append(_timed("primary sign-up, insert, read", lambda: _auth_rest(anon(endpoints.primary_url))))
        if "primary" in endpoints.ports and "replica" in endpoints.ports:
            primary, replica = (
                anon(url, keys.SERVICE_ROLE_KEY) for url in (endpoints.primary_url, endpoints.replica_url)
            )
            probes.append(_timed("replica follows primary", functools.partial(_replication, primary, replica)))
        if "edge" in endpoints.ports:
            for country, expected in (("CN", "ap-northeast-1"), ("SG", "ap-southeast-1")):
                probe = functools.partial(_edge_route, anon(endpoints.edge_url), country, expected)
                probes.append(_timed(f"edge routes {country} viewers", probe))
        if "livekit" in endpoints.ports:
            probes.append(_timed("livekit GET /", lambda: _livekit(http, endpoints.url("livekit"))))
        if "edge" in endpoints.ports:
            probes.append(_timed("edge /index.html", lambda: _edge(http, endpoints.edge_url)))
    return probes


def _health(region: SupabaseClient) -> str:
    response = region.request("GET", "/health")  # the reference stack's own health route, not Supabase's
    response.raise_for_status()
    body = response.json()
    header = region.names.region_header
    return f"region={body['region']} role={body['role']} {header}={response.headers[header]}"


def _auth_rest(supabase: SupabaseClient) -> str:
    names = supabase.names
    email = f"check-{uuid.uuid4().hex[:12]}@example.test"
    signup = supabase.sign_up(email, "check-pass-1")
    assert signup.status_code == 200, f"sign-up answered {signup.status_code}: {signup.text[:200]}"
    session = signup.json()
    token, user_id = session["access_token"], session["user"]["id"]
    conversation = supabase.insert(names.conversations, {"title": "check", "created_by": user_id}, token=token)
    assert conversation.status_code == 201, f"insert answered {conversation.status_code}: {conversation.text[:200]}"
    conversation_id = conversation.json()[0]["id"]
    member = supabase.insert(  # return=minimal: see smoke._create_conversation
        names.members, {"conversation_id": conversation_id, "user_id": user_id}, returning=False, token=token
    )
    assert member.status_code == 201, f"member insert answered {member.status_code}: {member.text[:200]}"
    message = {"conversation_id": conversation_id, "sender_id": user_id, "client_msg_id": "check-1", "content": "hi"}
    sent = supabase.insert(names.messages, message, token=token)
    assert sent.status_code == 201, f"message insert answered {sent.status_code}: {sent.text[:200]}"
    read = supabase.select(names.messages, filters={"conversation_id": api.eq(conversation_id)}, token=token)
    assert read.status_code == 200 and len(read.json()) == 1, f"read answered {read.status_code}: {read.text[:200]}"
    return "signed up, created a conversation, sent and read back a message"


def _replication(primary: SupabaseClient, replica: SupabaseClient) -> str:
    table = primary.names.conversations
    created = primary.insert(table, {"title": "replication check"})
    assert created.status_code == 201, f"insert answered {created.status_code}: {created.text[:200]}"
    conversation_id = created.json()[0]["id"]
    started = time.monotonic()
    while time.monotonic() - started < PROBE_TIMEOUT_S:
        found = replica.select(table, filters={"id": api.eq(conversation_id)})
        if found.status_code == 200 and found.json():
            return f"insert visible on the replica after {(time.monotonic() - started) * 1000:.0f} ms"
        time.sleep(0.02)
    raise AssertionError(f"insert not on the replica after {PROBE_TIMEOUT_S} s")


def _edge_route(edge: SupabaseClient, country: str, expected_region: str) -> str:
    response = edge.http.get(f"{edge.base_url}/health", headers=viewer_headers(country))
    region = edge.region(response)
    assert response.status_code == 200 and region == expected_region, (
        f"served by {region!r} (status {response.status_code}), expected {expected_region}"
    )
    return f"served by {region} via {response.headers.get('x-edge-location')}"


def _livekit(http: httpx.Client, url: str) -> str:
    response = http.get(url)
    assert response.status_code == 200, f"answered {response.status_code}"
    return response.text.strip()


def _edge(http: httpx.Client, url: str) -> str:
    response = http.get(f"{url}/index.html", headers={"Accept-Encoding": "br, gzip"})
    assert response.status_code == 200, f"answered {response.status_code}"
    return f"content-encoding={response.headers.get('content-encoding', 'identity')}"
