"""PostgREST edges (issue 16 item 6): `Prefer: tx=`, `handling=strict|lenient`, `max-affected` (postgrest-py's
max_affected, raw HTTP for exact bodies and Preference-Applied), and the OpenAPI document at `/rest/v1/` as each
role sees it (openapi-mode follow-privileges). One server for the module."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from postgrest.exceptions import APIError

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from harness.refstack.region.state import DB
from supabase import AsyncClientOptions, acreate_client
from tests.refstack.region.conftest import SERVICE_HEADERS as SERVICE
from tests.refstack.region.conftest import TEST_BCRYPT_COST, anon_headers

# A table only the service role may touch, and a function anon may not execute: what follow-privileges hides.
_PRIVATE = """
create table public.audit_notes (id bigint generated always as identity primary key, note varchar(40) not null,
  kind text default 'plain'::text, tags text[]);
comment on table public.audit_notes is 'Audit notes
Only the service role reads them.';
comment on column public.audit_notes.note is 'What happened';
revoke all on public.audit_notes from anon, authenticated;
grant all on public.audit_notes to service_role;
create function public.audit_count(since timestamptz, kind text default 'plain') returns bigint
  language sql stable as $$ select count(*) from public.audit_notes $$;
revoke execute on function public.audit_count(timestamptz, text) from public, anon, authenticated;
grant execute on function public.audit_count(timestamptz, text) to service_role;
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    data_dir: Path = tmp_path_factory.mktemp("rest-prefer")
    with background(lambda: build_app(RegionConfig(data_dir=data_dir, bcrypt_cost=TEST_BCRYPT_COST))) as server:
        app = server.app
        assert app is not None

        async def create() -> None:
            await app[DB].admin.execute(_PRIVATE)

        server.call(create)
        deadline = time.monotonic() + 15
        while "/audit_notes" not in _openapi(server, SERVICE).json()["paths"]:  # the DDL's schema reload
            assert time.monotonic() < deadline, "schema cache did not reload"
            time.sleep(0.05)
        yield server


def _openapi(srv: BackgroundServer, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{srv.url}/rest/v1/", headers=headers, timeout=10)


def _rest(srv: BackgroundServer, method: str, path: str, prefer: str = "", **kwargs: Any) -> httpx.Response:
    headers = {**SERVICE, **({"Prefer": prefer} if prefer else {})}
    return httpx.request(method, f"{srv.url}/rest/v1/{path}", headers=headers, timeout=10, **kwargs)


def _titled(srv: BackgroundServer, title: str, n: int) -> None:
    made = _rest(srv, "POST", "conversations", json=[{"title": title} for _ in range(n)])
    assert made.status_code == 201, made.text


def test_tx_rollback_answers_but_keeps_nothing(srv: BackgroundServer) -> None:
    title = f"rolled-{uuid.uuid4()}"
    answered = _rest(srv, "POST", "conversations", "return=representation, tx=rollback", json={"title": title})
    assert answered.status_code == 201 and answered.json()[0]["title"] == title
    assert answered.headers["Preference-Applied"] == "return=representation, tx=rollback"
    assert _rest(srv, "GET", f"conversations?title=eq.{title}").json() == []
    kept = _rest(srv, "POST", "conversations", "tx=commit", json={"title": title})
    assert kept.status_code == 201 and kept.headers["Preference-Applied"] == "tx=commit"
    assert len(_rest(srv, "GET", f"conversations?title=eq.{title}").json()) == 1
    # An update and a delete roll back too.
    assert _rest(srv, "PATCH", f"conversations?title=eq.{title}", "tx=rollback", json={"title": "x"}).status_code == 204
    assert _rest(srv, "DELETE", f"conversations?title=eq.{title}", "tx=rollback").status_code == 204
    assert len(_rest(srv, "GET", f"conversations?title=eq.{title}").json()) == 1


def test_handling_strict_refuses_unknown_preferences(srv: BackgroundServer) -> None:
    refused = _rest(srv, "GET", "conversations?limit=1", "handling=strict, foo=bar, count=bogus")
    assert refused.status_code == 400 and refused.json() == {
        "code": "PGRST122",
        "details": "Invalid preferences: foo=bar, count=bogus",
        "hint": None,
        "message": "Invalid preferences given with handling=strict",
    }
    lenient = _rest(srv, "GET", "conversations?limit=1", "handling=lenient, foo=bar")
    assert lenient.status_code == 200 and lenient.headers["Preference-Applied"] == "handling=lenient"
    plain = _rest(srv, "GET", "conversations?limit=1", "foo=bar, count=exact")
    assert plain.status_code == 200 and plain.headers["Preference-Applied"] == "count=exact"
    strict_ok = _rest(srv, "GET", "conversations?limit=1", "handling=strict, count=exact, timezone=UTC")
    assert strict_ok.status_code == 200


def test_max_affected_with_strict_handling(srv: BackgroundServer) -> None:
    title = f"many-{uuid.uuid4()}"
    _titled(srv, title, 3)
    over = _rest(
        srv, "PATCH", f"conversations?title=eq.{title}", "handling=strict, max-affected=2", json={"is_group": True}
    )
    assert over.status_code == 400 and over.json() == {
        "code": "PGRST124",
        "details": "The query affects 3 rows",
        "hint": None,
        "message": "Query result exceeds max-affected preference constraint",
    }
    rows = _rest(srv, "GET", f"conversations?title=eq.{title}&is_group=eq.true").json()
    assert rows == []  # the update was undone
    # Without handling=strict, max-affected is ignored (PostgREST 12+).
    loose = _rest(srv, "PATCH", f"conversations?title=eq.{title}", "max-affected=1", json={"is_group": True})
    assert loose.status_code == 204 and "Preference-Applied" not in loose.headers
    fits = _rest(srv, "DELETE", f"conversations?title=eq.{title}", "handling=strict, max-affected=3")
    assert fits.status_code == 204 and fits.headers["Preference-Applied"] == "handling=strict, max-affected=3"
    single = _rest(srv, "POST", "rpc/is_member", "handling=strict, max-affected=1", json={"conv": str(uuid.uuid4())})
    assert single.status_code == 400 and single.json()["code"] == "PGRST128"


def test_max_affected_through_postgrest_py(srv: BackgroundServer) -> None:
    title = f"py-{uuid.uuid4()}"
    _titled(srv, title, 2)

    async def scenario() -> None:
        options = AsyncClientOptions(auto_refresh_token=False, persist_session=False)
        admin = await acreate_client(srv.url, keys.SERVICE_ROLE_KEY, options=options)
        with pytest.raises(APIError) as refused:
            await admin.table("conversations").delete().eq("title", title).max_affected(1).execute()
        assert (refused.value.code, refused.value.details) == ("PGRST124", "The query affects 2 rows")
        query = admin.table("conversations").update({"is_group": True}).eq("title", title)
        done = await query.max_affected(2).execute()
        rows = cast(list[dict[str, Any]], done.data)
        assert len(rows) == 2 and all(row["is_group"] for row in rows)

    asyncio.run(scenario())


def test_openapi_document_follows_the_roles_privileges(srv: BackgroundServer) -> None:
    service = _openapi(srv, SERVICE)
    assert service.status_code == 200 and service.headers["Content-Type"] == "application/openapi+json; charset=utf-8"
    doc = service.json()
    assert (doc["swagger"], doc["basePath"], doc["info"]["title"]) == ("2.0", "/rest/v1/", "standard public schema")
    for path in ("/", "/profiles", "/conversations", "/conversation_members", "/messages", "/audit_notes"):
        assert path in doc["paths"], path
    assert set(doc["paths"]["/messages"]) == {"get", "post", "patch", "delete"}
    assert "/rpc/is_member" in doc["paths"] and "/rpc/audit_count" in doc["paths"]
    messages = doc["definitions"]["messages"]
    assert messages["required"] == ["id", "conversation_id", "sender_id", "client_msg_id", "kind", "created_at"]
    props = messages["properties"]
    assert props["id"] == {
        "default": "gen_random_uuid()",
        "description": "Note:\nThis is a Primary Key.<pk/>",
        "format": "uuid",
        "type": "string",
    }
    assert props["conversation_id"]["description"] == (
        "Note:\nThis is a Foreign Key to `conversations.id`.<fk table='conversations' column='id'/>"
    )
    assert props["metadata"] == {"format": "jsonb"} and props["kind"]["default"] == "text"
    notes = doc["definitions"]["audit_notes"]
    assert notes["description"] == "Audit notes\nOnly the service role reads them."
    assert notes["properties"]["note"] == {
        "description": "What happened", "format": "character varying", "maxLength": 40, "type": "string",
    }  # fmt: skip
    assert notes["properties"]["id"]["format"] == "int64" and "default" not in notes["properties"]["id"]
    assert notes["properties"]["tags"] == {"format": "text[]", "type": "array", "items": {"type": "string"}}
    assert doc["paths"]["/audit_notes"]["get"]["summary"] == "Audit notes"
    count = doc["paths"]["/rpc/audit_count"]
    assert [(p["name"], p["required"]) for p in count["get"]["parameters"]] == [("since", True), ("kind", False)]
    assert count["post"]["parameters"][0]["schema"]["required"] == ["since"]
    assert set(doc["paths"]["/rpc/my_conversation_ids"]) == {"get", "post"}

    anon = _openapi(srv, anon_headers()).json()
    assert "/audit_notes" not in anon["paths"] and "audit_notes" not in anon["definitions"]
    assert "/rpc/audit_count" not in anon["paths"]
    assert "/messages" in anon["paths"]
    head = httpx.head(f"{srv.url}/rest/v1/", headers=SERVICE)
    assert head.status_code == 200 and head.content == b""
    no_key = httpx.get(f"{srv.url}/rest/v1/")
    assert no_key.status_code == 401
