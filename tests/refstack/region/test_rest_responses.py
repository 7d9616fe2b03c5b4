"""Response shapes: singular objects (a write that is not exactly one row rolls back), CSV, counts, Range and
Content-Range, Prefer return/missing, `columns=`, and PostgREST's error codes for bad input (never a 500)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from tests.refstack.region.conftest import create_conversation, create_user, user_headers

SINGULAR = {"Accept": "application/vnd.pgrst.object+json"}


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    config = RegionConfig(data_dir=tmp_path_factory.mktemp("region"), bcrypt_cost=4)
    with background(lambda: build_app(config)) as server:
        yield server


@pytest.fixture
def chat(region: BackgroundServer) -> dict[str, Any]:
    """A fresh user with a conversation of their own holding messages m0..m4."""
    user, token, _ = create_user(region.url)
    conversation = create_conversation(region.url, token, [])
    for i in range(5):
        row = {"conversation_id": conversation, "sender_id": user, "client_msg_id": f"m{i}", "content": f"c,{i}"}
        assert _rest(region, token, "POST", "messages", json=row).status_code == 201
    return {"user": user, "token": token, "conv": conversation}


def _rest(region: BackgroundServer, token: str, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {**user_headers(token), **kw.pop("headers", {})}
    return httpx.request(method, f"{region.url}/rest/v1/{path}", headers=headers, timeout=10, **kw)


# -- singular -----------------------------------------------------------------------------------------------------
def test_singular_read_is_one_object(region: BackgroundServer, chat: dict[str, Any]) -> None:
    one = _rest(region, chat["token"], "GET", "messages?select=client_msg_id&client_msg_id=eq.m3", headers=SINGULAR)
    assert (one.status_code, one.json()) == (200, {"client_msg_id": "m3"})
    assert one.headers["Content-Type"].startswith("application/vnd.pgrst.object+json")
    many = _rest(region, chat["token"], "GET", "messages", headers=SINGULAR)
    assert (many.status_code, many.json()["code"], many.json()["details"]) == (
        406,
        "PGRST116",
        "The result contains 5 rows",
    )


def test_singular_write_of_several_rows_rolls_back(region: BackgroundServer, chat: dict[str, Any]) -> None:
    prefer = {**SINGULAR, "Prefer": "return=representation"}
    patched = _rest(
        region, chat["token"], "PATCH", "messages?client_msg_id=in.(m0,m1)", json={"content": "x"}, headers=prefer
    )
    assert (patched.status_code, patched.json()["code"]) == (406, "PGRST116")
    deleted = _rest(region, chat["token"], "DELETE", "messages", headers=SINGULAR)
    assert deleted.status_code == 406
    rows = _rest(region, chat["token"], "GET", "messages?select=content&order=client_msg_id").json()
    assert [r["content"] for r in rows] == [f"c,{i}" for i in range(5)]
    one = _rest(region, chat["token"], "PATCH", "messages?client_msg_id=eq.m0", json={"content": "y"}, headers=prefer)
    assert (one.status_code, one.json()["content"]) == (200, "y")


# -- CSV, counts, ranges ------------------------------------------------------------------------------------------
def test_csv(region: BackgroundServer, chat: dict[str, Any]) -> None:
    response = _rest(
        region, chat["token"], "GET", "messages?select=client_msg_id,content&order=client_msg_id&limit=2",
        headers={"Accept": "text/csv"},
    )  # fmt: skip
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert response.text == 'client_msg_id,content\nm0,"c,0"\nm1,"c,1"'


@pytest.mark.parametrize(
    ("prefer", "range_header", "query", "status", "content_range"),
    [
        ("count=exact", None, "limit=2&offset=1", 206, "1-2/5"),
        ("count=exact", None, "", 200, "0-4/5"),
        ("count=estimated", None, "limit=1", 206, "0-0/5"),
        (None, None, "limit=2", 200, "0-1/*"),
        ("count=exact", "1-3", "", 206, "1-3/5"),
        ("count=exact", "3-", "", 206, "3-4/5"),
        ("count=exact", "0-9", "limit=2", 206, "0-1/5"),
        ("count=exact", None, "client_msg_id=eq.none", 200, "*/0"),
    ],
)
def test_counts_ranges_and_content_range(
    region: BackgroundServer,
    chat: dict[str, Any],
    prefer: str | None,
    range_header: str | None,
    query: str,
    status: int,
    content_range: str,
) -> None:
    headers = {"Prefer": prefer} if prefer else {}
    if range_header:
        headers |= {"Range": range_header, "Range-Unit": "items"}
    response = _rest(
        region, chat["token"], "GET", f"messages?select=client_msg_id&order=client_msg_id&{query}", headers=headers
    )
    assert (response.status_code, response.headers["Content-Range"]) == (status, content_range)


def test_planned_count_and_out_of_range(region: BackgroundServer, chat: dict[str, Any]) -> None:
    planned = _rest(region, chat["token"], "GET", "messages?limit=1", headers={"Prefer": "count=planned"})
    assert planned.status_code in (200, 206)
    assert planned.headers["Content-Range"].split("/")[1].isdigit()
    beyond = _rest(region, chat["token"], "GET", "messages?offset=9", headers={"Prefer": "count=exact"})
    assert (beyond.status_code, beyond.json()["code"]) == (416, "PGRST103")
    backwards = _rest(region, chat["token"], "GET", "messages", headers={"Range": "3-1"})
    assert (backwards.status_code, backwards.json()["code"]) == (416, "PGRST103")


# -- Prefer on writes -----------------------------------------------------------------------------------------------
def test_return_headers_only_missing_default_and_columns(region: BackgroundServer, chat: dict[str, Any]) -> None:
    base = {"conversation_id": chat["conv"], "sender_id": chat["user"]}
    headers_only = _rest(
        region, chat["token"], "POST", "messages", json={**base, "client_msg_id": "h1"},
        headers={"Prefer": "return=headers-only"},
    )  # fmt: skip
    assert (headers_only.status_code, headers_only.content) == (201, b"")
    assert headers_only.headers["Location"].startswith("/messages?id=eq.")
    rows = [{**base, "client_msg_id": "d1", "kind": "image"}, {**base, "client_msg_id": "d2"}]
    columns = "columns=conversation_id,sender_id,client_msg_id,kind"
    defaulted = _rest(
        region, chat["token"], "POST", f"messages?{columns}&select=client_msg_id,kind",
        json=rows, headers={"Prefer": "return=representation,missing=default,count=exact"},
    )  # fmt: skip
    assert defaulted.status_code == 201, defaulted.text
    assert defaulted.json() == [{"client_msg_id": "d1", "kind": "image"}, {"client_msg_id": "d2", "kind": "text"}]
    assert defaulted.headers["Content-Range"] == "*/2"
    without = _rest(
        region,
        chat["token"],
        "POST",
        "messages?columns=conversation_id,sender_id,client_msg_id,kind",
        json=[{**base, "client_msg_id": "d3"}],
    )
    assert (without.status_code, without.json()["code"]) == (400, "23502")  # kind: null is sent, not the default


# -- bad input: PostgREST's codes, never a 500 ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "code"),
    [
        ("GET", "messages?content=eq", None, {}, 400, "PGRST100"),
        ("GET", "messages?content=between.1", None, {}, 400, "PGRST100"),
        ("GET", "messages?or=(content.eq.1", None, {}, 400, "PGRST100"),
        ("GET", "messages?select=a:b:c", None, {}, 400, "42703"),
        ("GET", "messages?select=content::text;drop", None, {}, 400, "PGRST100"),
        ("GET", "messages?content=eq.%00", None, {}, 400, "PGRST100"),
        ("GET", "messages?content=eq.%ED%A0%80", None, {}, 200, None),
        ("GET", "messages", None, {"Accept": "application/xml"}, 406, "PGRST107"),
        ("GET", "messages?id=eq.1", None, {}, 400, "22P02"),
        ("GET", "messages?created_at=gt.yesterday-ish", None, {}, 400, "22007"),
        ("GET", "nope", None, {}, 404, "PGRST205"),
        ("POST", "messages", b"", {}, 400, "PGRST102"),
        ("POST", "messages", b'{"content": "\\ud800"}', {}, 400, "PGRST102"),
        ("POST", "messages", b'{"content": "\\udc00\\ud800"}', {}, 400, "PGRST102"),
        ("POST", "messages", b"[" * 100_000 + b"]" * 100_000, {}, 400, "PGRST102"),
        ("POST", "messages", b'{"content": 1' + b"0" * 5000 + b"}", {}, 400, "PGRST102"),
        ("POST", "messages", b'{"kind": 1e999999}', {}, 400, "22003"),
        ("POST", "messages", b"\xff\xfe", {}, 400, "PGRST102"),
        ("POST", "messages", b"[1, 2]", {}, 400, "PGRST102"),
        ("POST", "messages", b'[{"content": "a"}, {"kind": "b"}]', {}, 400, "PGRST102"),
        ("POST", "messages", b'{"bogus": 1}', {}, 400, "PGRST204"),
        ("POST", "messages?columns=content,bogus", b'{"content": 1}', {}, 400, "PGRST204"),
        ("PATCH", "messages", b"[]", {}, 400, "PGRST102"),
        ("PATCH", "messages", b'{"bogus": 1}', {}, 400, "PGRST204"),
        ("DELETE", "messages?limit=1", None, {}, 400, "PGRST100"),
    ],
)
def test_bad_input_answers_postgrest_codes(
    region: BackgroundServer,
    chat: dict[str, Any],
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    status: int,
    code: str | None,
) -> None:
    response = _rest(region, chat["token"], method, path, content=body, headers=headers)
    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["code"] == code
        assert set(response.json()) == {"code", "details", "hint", "message"}


def test_nul_in_text_is_postgres_22p05(region: BackgroundServer, chat: dict[str, Any]) -> None:
    row = {"conversation_id": chat["conv"], "sender_id": chat["user"], "client_msg_id": "nul", "content": "a\u0000b"}
    response = _rest(region, chat["token"], "POST", "messages", json=row)
    assert (response.status_code, response.json()["code"]) == (400, "22P05")


def test_bad_jwt_is_401_pgrst301(region: BackgroundServer) -> None:
    response = httpx.get(
        f"{region.url}/rest/v1/messages", headers={"apikey": keys.ANON_KEY, "Authorization": "Bearer not-a-jwt"}
    )
    assert (response.status_code, response.json()["code"]) == (401, "PGRST301")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_representation_of_a_write_embeds_and_renames(region: BackgroundServer, chat: dict[str, Any]) -> None:
    row = {"conversation_id": chat["conv"], "sender_id": chat["user"], "client_msg_id": "e1", "content": "x"}
    response = _rest(
        region, chat["token"], "POST", "messages?select=ref:client_msg_id,conversations(id)", json=row,
        headers={"Prefer": "return=representation"},
    )  # fmt: skip
    assert (response.status_code, response.json()) == (201, [{"ref": "e1", "conversations": {"id": chat["conv"]}}])
    patched = _rest(
        region, chat["token"], "PATCH", "messages?client_msg_id=eq.e1&select=content", json={"content": "y"},
        headers={"Prefer": "return=representation", "Accept": "text/csv"},
    )  # fmt: skip
    assert (patched.status_code, patched.text) == (200, "content\ny")
