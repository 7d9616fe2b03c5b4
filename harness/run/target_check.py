"""Start-and-probe: prove each piece of a running reference stack answers (the README's first command until the
smoke run exists, and a quick self-test after that)."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from harness.model import keys
from harness.refstack.stack import Endpoints

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


def probe_stack(endpoints: Endpoints) -> list[Probe]:
    probes: list[Probe] = []
    with httpx.Client(timeout=PROBE_TIMEOUT_S) as http:
        for piece in ("primary", "replica"):
            if piece in endpoints.ports:
                url = endpoints.url(piece)
                probes.append(_timed(f"{piece} /health", functools.partial(_health, http, url)))
        if "primary" in endpoints.ports:
            probes.append(_timed("primary sign-up, insert, read", lambda: _auth_rest(http, endpoints.primary_url)))
        if "primary" in endpoints.ports and "replica" in endpoints.ports:
            probes.append(_timed("replica follows primary", lambda: _replication(http, endpoints)))
        if "edge" in endpoints.ports:
            for country, expected in (("CN", "ap-northeast-1"), ("SG", "ap-southeast-1")):
                probe = functools.partial(_edge_route, http, endpoints.edge_url, country, expected)
                probes.append(_timed(f"edge routes {country} viewers", probe))
        if "livekit" in endpoints.ports:
            probes.append(_timed("livekit GET /", lambda: _livekit(http, endpoints.url("livekit"))))
        if "edge" in endpoints.ports:
            probes.append(_timed("edge /index.html", lambda: _edge(http, endpoints.edge_url)))
    return probes


def _health(http: httpx.Client, url: str) -> str:
    response = http.get(f"{url}/health")
    response.raise_for_status()
    body = response.json()
    return f"region={body['region']} role={body['role']} x-origin-region={response.headers['x-origin-region']}"


def _auth_rest(http: httpx.Client, url: str) -> str:
    headers = {"apikey": keys.ANON_KEY, "Content-Type": "application/json"}
    email = f"check-{uuid.uuid4().hex[:12]}@example.test"
    signup = http.post(f"{url}/auth/v1/signup", headers=headers, json={"email": email, "password": "check-pass-1"})
    assert signup.status_code == 200, f"sign-up answered {signup.status_code}: {signup.text[:200]}"
    session = signup.json()
    user_headers = {**headers, "Authorization": f"Bearer {session['access_token']}", "Prefer": "return=representation"}
    user_id = session["user"]["id"]
    conversation = http.post(
        f"{url}/rest/v1/conversations", headers=user_headers, json={"title": "check", "created_by": user_id}
    )
    assert conversation.status_code == 201, f"insert answered {conversation.status_code}: {conversation.text[:200]}"
    conversation_id = conversation.json()[0]["id"]
    member = http.post(
        f"{url}/rest/v1/conversation_members",
        headers=user_headers,
        json={"conversation_id": conversation_id, "user_id": user_id},
    )
    assert member.status_code == 201, f"member insert answered {member.status_code}: {member.text[:200]}"
    message = {"conversation_id": conversation_id, "sender_id": user_id, "client_msg_id": "check-1", "content": "hi"}
    sent = http.post(f"{url}/rest/v1/messages", headers=user_headers, json=message)
    assert sent.status_code == 201, f"message insert answered {sent.status_code}: {sent.text[:200]}"
    read = http.get(
        f"{url}/rest/v1/messages",
        headers=user_headers,
        params={"select": "*", "conversation_id": f"eq.{conversation_id}"},
    )
    assert read.status_code == 200 and len(read.json()) == 1, f"read answered {read.status_code}: {read.text[:200]}"
    return "signed up, created a conversation, sent and read back a message"


def _replication(http: httpx.Client, endpoints: Endpoints) -> str:
    service = {"apikey": keys.SERVICE_ROLE_KEY, "Authorization": f"Bearer {keys.SERVICE_ROLE_KEY}"}
    created = http.post(
        f"{endpoints.primary_url}/rest/v1/conversations",
        json={"title": "replication check"},
        headers={**service, "Prefer": "return=representation"},
    )
    assert created.status_code == 201, f"insert answered {created.status_code}: {created.text[:200]}"
    conversation_id = created.json()[0]["id"]
    started = time.monotonic()
    while time.monotonic() - started < PROBE_TIMEOUT_S:
        found = http.get(
            f"{endpoints.replica_url}/rest/v1/conversations", headers=service, params={"id": f"eq.{conversation_id}"}
        )
        if found.status_code == 200 and found.json():
            return f"insert visible on the replica after {(time.monotonic() - started) * 1000:.0f} ms"
        time.sleep(0.02)
    raise AssertionError(f"insert not on the replica after {PROBE_TIMEOUT_S} s")


def _edge_route(http: httpx.Client, url: str, country: str, expected_region: str) -> str:
    response = http.get(f"{url}/health", headers={"CloudFront-Viewer-Country": country})
    region = response.headers.get("x-origin-region")
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
