"""PostgREST over a user migration (rest_migration/ applied after the app's own): /rpc with every result shape,
every filter operator on the types that have them, hinted embeds between two foreign keys, statement timeouts,
and the official postgrest client.

One region for the module: the tests create their own users, so they do not see each other's rows (RLS).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from postgrest import SyncPostgrestClient
from postgrest.exceptions import APIError

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.postgres import migrations
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from tests.refstack.region.conftest import create_user, run_sql, user_headers

USER_MIGRATION = Path(__file__).resolve().parent / "rest_migration"


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    folder = tmp_path_factory.mktemp("migrations")
    for source in (migrations.default_folder(), USER_MIGRATION):
        for sql in source.glob("*.sql"):
            shutil.copy(sql, folder / sql.name)
    config = RegionConfig(
        data_dir=tmp_path_factory.mktemp("region"), migrations_dir=folder, statement_timeout_ms=500, bcrypt_cost=4
    )
    with background(lambda: build_app(config)) as server:
        yield server


class Rest:
    """Raw HTTP to /rest/v1 as one signed-in user."""

    def __init__(self, base: str, token: str, user_id: str) -> None:
        self.base = f"{base}/rest/v1"
        self.headers = user_headers(token)
        self.user_id = user_id

    def __call__(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return httpx.request(method, f"{self.base}/{path}", headers=headers, timeout=10, **kw)


@pytest.fixture
def rest(region: BackgroundServer) -> Rest:
    user_id, token, _ = create_user(region.url)
    return Rest(region.url, token, user_id)


NOTES = [
    {
        "title": "alpha",
        "body": "the quick brown fox",
        "tags": ["a", "b"],
        "data": {"n": 1, "k": {"v": "x"}},
        "during": "[1,5)",
    },
    {
        "title": "beta",
        "body": "jumps over the lazy dog",
        "tags": ["b"],
        "data": {"n": 2, "k": {"v": "y"}},
        "during": "[5,9)",
    },
    {"title": "gamma", "body": None, "tags": [], "data": None, "during": "[20,30)"},
]


@pytest.fixture
def notes(rest: Rest) -> dict[str, int]:
    created = rest("POST", "notes", json=NOTES, headers={"Prefer": "return=representation"})
    assert created.status_code == 201, created.text
    ids = {n["title"]: n["id"] for n in created.json()}
    assert all(n["owner"] == rest.user_id for n in created.json())
    return ids


def _titles(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["title"] for r in response.json()]


# -- operators ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("title=eq.alpha", ["alpha"]),
        ("title=neq.alpha", ["beta", "gamma"]),
        ("id=gt.0&title=lt.beta", ["alpha"]),
        ("title=gte.beta", ["beta", "gamma"]),
        ("title=lte.beta", ["alpha", "beta"]),
        ("title=like.*amm*", ["gamma"]),
        ("title=ilike.ALP*", ["alpha"]),
        ("title=match.^[ab]", ["alpha", "beta"]),
        ("title=imatch.^B", ["beta"]),
        ("title=in.(alpha,gamma)", ["alpha", "gamma"]),
        ("title=not.in.(alpha,gamma)", ["beta"]),
        ('title=in.("alpha","x,y")', ["alpha"]),
        ("body=is.null", ["gamma"]),
        ("body=not.is.null", ["alpha", "beta"]),
        ("body=is.not_null", ["alpha", "beta"]),
        ("body=isdistinct.jumps over the lazy dog", ["alpha", "gamma"]),
        ("search=fts.quick", ["alpha"]),
        ("search=fts(english).jumping", ["beta"]),
        ("body=plfts.lazy dog", ["beta"]),
        ("body=phfts(english).quick brown", ["alpha"]),
        ("body=wfts.fox or dog", ["alpha", "beta"]),
        ("body=not.wfts.fox", ["beta"]),
        ("tags=cs.{b}", ["alpha", "beta"]),
        ("tags=cd.{a,b}", ["alpha", "beta", "gamma"]),
        ("tags=ov.{a,z}", ["alpha"]),
        ('data=cs.{"k":{"v":"y"}}', ["beta"]),
        ("during=sl.[10,11)", ["alpha", "beta"]),
        ("during=sr.[10,11)", ["gamma"]),
        ("during=nxr.[0,5)", ["alpha"]),
        ("during=nxl.[6,7)", ["gamma"]),
        ("during=adj.[9,20)", ["beta", "gamma"]),
        ("during=ov.[4,6)", ["alpha", "beta"]),
        ("title=like(any).{a*,g*}", ["alpha", "gamma"]),
        ("title=eq(any).{beta,gamma}", ["beta", "gamma"]),
        ("title=neq(all).{beta,gamma}", ["alpha"]),
        ("data->>n=eq.2", ["beta"]),
        ("data->k->>v=in.(x,y)", ["alpha", "beta"]),
        ('data->k=eq.{"v":"x"}', ["alpha"]),
        ("or=(title.eq.alpha,title.eq.gamma)", ["alpha", "gamma"]),
        ("or=(title.eq.alpha,and(tags.cs.{b},body.like.*lazy*))", ["alpha", "beta"]),
        ("not.or=(title.eq.alpha,title.eq.gamma)", ["beta"]),
        ("and=(id.gt.0,or(body.is.null,title.eq.beta))", ["beta", "gamma"]),
        ("or=(title.eq.alpha,not.and(title.neq.beta,body.is.null))", ["alpha", "beta"]),
        ('or=(data->>n.eq.1,during.adj."[30,40)")', ["alpha", "gamma"]),
    ],
)
def test_every_operator(rest: Rest, notes: dict[str, int], query: str, expected: list[str]) -> None:
    assert _titles(rest("GET", f"notes?select=title&order=title&{query}")) == expected


def test_select_renames_casts_and_json_paths(rest: Rest, notes: dict[str, int]) -> None:
    got = rest("GET", "notes?select=name:title,id::text,data->k->>v,n:data->n,data->missing&title=eq.alpha").json()
    assert got == [{"name": "alpha", "id": str(notes["alpha"]), "v": "x", "n": 1, "missing": None}]
    ordered = rest("GET", "notes?select=title&order=data->>n.desc.nullslast")
    assert _titles(ordered) == ["beta", "alpha", "gamma"]


# -- embedding with two foreign keys between the same tables ----------------------------------------------------------
def test_ambiguous_embed_needs_a_hint(rest: Rest, notes: dict[str, int]) -> None:
    link = {"from_note": notes["alpha"], "to_note": notes["beta"], "label": "next"}
    assert rest("POST", "note_links", json=link).status_code == 201
    ambiguous = rest("GET", "note_links?select=*,notes(*)")
    assert ambiguous.status_code == 300
    body = ambiguous.json()
    assert body["code"] == "PGRST201" and len(body["details"]) == 2
    assert "'notes!note_links_from_note_fkey'" in body["hint"]
    by_fk = rest(
        "GET", "note_links?select=label,source:notes!note_links_from_note_fkey(title),target:notes!to_note(title)"
    )
    assert by_fk.json() == [{"label": "next", "source": {"title": "alpha"}, "target": {"title": "beta"}}]
    reverse = rest(
        "GET", "notes?select=title,outgoing:note_links!from_note(label,to:notes!to_note(title))&order=title&limit=2"
    )
    assert reverse.json() == [
        {"title": "alpha", "outgoing": [{"label": "next", "to": {"title": "beta"}}]},
        {"title": "beta", "outgoing": []},
    ]


# -- rpc ----------------------------------------------------------------------------------------------------------
def test_rpc_result_shapes(rest: Rest, notes: dict[str, int]) -> None:
    assert rest("GET", "rpc/note_count").json() == 3
    assert rest("POST", "rpc/note_count").json() == 3
    assert rest("GET", "rpc/numbers?n=3").json() == [1, 2, 3]
    assert rest("POST", "rpc/echo", json={"payload": {"a": [1, None]}}).json() == {"a": [1, None]}
    assert rest("POST", "rpc/echo_body", json={"whole": True}).json() == {"whole": True}
    single = rest("POST", "rpc/echo", json={"a": 1}, headers={"Prefer": "params=single-object"})
    assert single.json() == {"a": 1}
    lengths = rest("GET", "rpc/note_lengths?min_length=5&order=title.desc")
    assert lengths.json() == [{"title": "gamma", "length": 5}, {"title": "alpha", "length": 5}]
    added = rest("POST", "rpc/add_note", json={"title": "delta"})
    assert added.status_code == 200 and added.json()["title"] == "delta" and added.json()["owner"] == rest.user_id


def test_rpc_set_returning_takes_filters_order_limit_and_embeds(rest: Rest, notes: dict[str, int]) -> None:
    tagged = rest(
        "GET", "rpc/notes_tagged?tag=b&select=title&order=title.desc&limit=1", headers={"Prefer": "count=exact"}
    )
    assert (tagged.status_code, tagged.json(), tagged.headers["Content-Range"]) == (206, [{"title": "beta"}], "0-0/2")
    filtered = rest("POST", "rpc/notes_tagged?select=title&title=like.al*", json={"tag": "b"})
    assert filtered.json() == [{"title": "alpha"}]
    rest("POST", "note_links", json={"from_note": notes["alpha"], "to_note": notes["gamma"]})
    embedded = rest("GET", "rpc/notes_tagged?tag=a&select=title,note_links!from_note(to_note)")
    assert embedded.json() == [{"title": "alpha", "note_links": [{"to_note": notes["gamma"]}]}]


def test_rpc_errors(rest: Rest) -> None:
    missing = rest("POST", "rpc/nope", json={"a": 1})
    assert missing.status_code == 404
    assert missing.json()["code"] == "PGRST202"
    assert missing.json()["message"] == "Could not find the function public.nope(a) in the schema cache"
    wrong_args = rest("GET", "rpc/numbers?m=3")
    assert (wrong_args.status_code, wrong_args.json()["code"]) == (404, "PGRST202")
    raised = rest("POST", "rpc/fail", json={"message": "nope, not today"})
    assert (raised.status_code, raised.json()["code"], raised.json()["message"]) == (400, "P0001", "nope, not today")
    teapot = rest("POST", "rpc/teapot")
    assert (teapot.status_code, teapot.json()["message"]) == (418, "I am a teapot")
    bad_value = rest("GET", "rpc/numbers?n=many")
    assert (bad_value.status_code, bad_value.json()["code"]) == (400, "22P02")
    read_only = rest("GET", "rpc/touch_notes")
    assert (read_only.status_code, read_only.json()["code"]) == (405, "25006")
    assert rest("POST", "rpc/touch_notes").status_code == 204


def test_statement_timeout_is_500_with_postgres_message(rest: Rest) -> None:
    response = rest("GET", "rpc/slow?seconds=3")
    assert response.status_code == 500
    assert response.json()["code"] == "57014"
    assert response.json()["message"] == "canceling statement due to statement timeout"


def test_schema_reload_on_ddl(region: BackgroundServer, rest: Rest) -> None:
    """A function created after start is callable once the DDL event trigger's NOTIFY reloads the cache."""
    assert rest("GET", "rpc/answer").status_code == 404
    run_sql(region.url, "create function public.answer() returns int language sql immutable as 'select 42'")
    deadline = time.monotonic() + 5
    while (response := rest("GET", "rpc/answer")).status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (response.status_code, response.json()) == (200, 42)


# -- the official client ------------------------------------------------------------------------------------------
def test_official_postgrest_client(region: BackgroundServer, rest: Rest) -> None:
    headers = {"apikey": keys.ANON_KEY, "Authorization": rest.headers["Authorization"]}
    with SyncPostgrestClient(f"{region.url}/rest/v1", headers=headers) as client:
        inserted = (
            client.from_("notes").insert([{"title": "one", "tags": ["x"]}, {"title": "two", "tags": []}]).execute()
        )
        assert [r["title"] for r in inserted.data] == ["one", "two"]
        page = client.from_("notes").select("title", count="exact").order("title", desc=True).limit(1).execute()
        assert (page.data, page.count) == ([{"title": "two"}], 2)
        ors = client.from_("notes").select("title").or_("title.eq.one,tags.cs.{x}").execute()
        assert ors.data == [{"title": "one"}]
        tagged = client.rpc("notes_tagged", {"tag": "x"}).select("title").execute()
        assert tagged.data == [{"title": "one"}]
        assert client.rpc("note_count", {}).execute().data == 2
        upserted = (
            client.from_("notes").upsert({"id": inserted.data[0]["id"], "title": "uno"}, on_conflict="id").execute()
        )
        assert upserted.data[0]["title"] == "uno" and upserted.data[0]["tags"] == ["x"]
        with pytest.raises(APIError) as caught:
            client.from_("notes").select("title").eq("title", "none").single().execute()
        assert caught.value.code == "PGRST116"
