"""Fuzzing /rest/v1 with query strings and JSON bodies (hostile ones too: NaN, lone surrogates, deep nesting,
invalid UTF-8): bad input always gets a 4xx in PostgREST's error shape, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.model import strict_json
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from tests.refstack import fuzzing
from tests.refstack.region.conftest import create_conversation, create_user, user_headers

TABLES = ["messages", "conversations", "conversation_members", "profiles", "nope"]
COLUMNS = ["id", "conversation_id", "sender_id", "client_msg_id", "content", "metadata", "created_at", "is_group", "x"]
OPS = ["eq", "neq", "gt", "gte", "lt", "lte", "in", "is", "like", "ilike", "not.eq", "not.in", "fts", ""]
KEYS = [*COLUMNS, "select", "order", "limit", "offset", "columns", "on_conflict", "or"]
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
values = st.one_of(
    text,
    st.sampled_from(["null", "true", "1", "-1", "(a,b)", '("x,y",1)', "*", "2024-01-01T00:00:00Z", "{}", "%", "."]),
    st.uuids().map(str),
    st.integers().map(str),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def fuzz_target(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[BackgroundServer, dict[str, str], dict[str, Any]]]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    with background(lambda: build_app(RegionConfig(data_dir=data_dir))) as server:
        user_id, token, _ = create_user(server.url)
        conversation = create_conversation(server.url, token, [])
        yield server, user_headers(token), {"user": user_id, "conv": conversation}


def _assert_client_error_shape(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and response.request.method != "HEAD":  # a HEAD answer has no body
        body = response.json()
        assert "message" in body


@FUZZ
@given(
    table=st.sampled_from(TABLES),
    params=st.lists(
        st.tuples(
            st.sampled_from(KEYS),
            st.one_of(st.tuples(st.sampled_from(OPS), values).map(lambda t: f"{t[0]}.{t[1]}"), values),
        ),
        max_size=4,
    ),
    method=st.sampled_from(["GET", "DELETE", "HEAD"]),
)
def test_query_strings_never_500(
    fuzz_target: tuple[BackgroundServer, dict[str, str], dict[str, Any]],
    table: str,
    params: list[tuple[str, str]],
    method: str,
) -> None:
    server, headers, _ = fuzz_target
    response = httpx.request(method, f"{server.url}/rest/v1/{table}", params=params, headers=headers, timeout=10)
    assert response.status_code < 500, response.text


@FUZZ
@given(
    table=st.sampled_from(TABLES[:-1]),
    body=st.one_of(
        json_values,
        st.dictionaries(st.sampled_from(COLUMNS), json_values, max_size=5),
        st.lists(st.dictionaries(st.sampled_from(COLUMNS), json_values, max_size=4), max_size=3),
    ),
    method=st.sampled_from(["POST", "PATCH"]),
    prefer=st.sampled_from(
        ["", "return=representation", "resolution=merge-duplicates", "resolution=ignore-duplicates"]
    ),
    query=st.sampled_from(["", "?columns=content,x", "?on_conflict=id", "?on_conflict=nope", "?select=id"]),
)
def test_json_bodies_never_500(
    fuzz_target: tuple[BackgroundServer, dict[str, str], dict[str, Any]],
    table: str,
    body: Any,
    method: str,
    prefer: str,
    query: str,
) -> None:
    server, headers, ids = fuzz_target
    if isinstance(body, dict) and table == "messages":
        body = {"conversation_id": ids["conv"], "sender_id": ids["user"], **body}
    response = httpx.request(
        method,
        f"{server.url}/rest/v1/{table}{query}",
        content=json.dumps(body),
        headers={**headers, "Prefer": prefer, "Content-Type": "application/json"},
        timeout=10,
    )
    _assert_client_error_shape(response)


@settings(FUZZ, max_examples=50)
@given(raw=st.binary(max_size=64))
def test_raw_bytes_never_500(fuzz_target: tuple[BackgroundServer, dict[str, str], dict[str, Any]], raw: bytes) -> None:
    server, headers, _ = fuzz_target
    response = httpx.post(f"{server.url}/rest/v1/messages", content=raw, headers=headers, timeout=10)
    _assert_client_error_shape(response)


TOKENS = [*'abcdeis.,:!()*"\\-> 01{}[]_', "id", "content", "metadata", "eq", "or", "and", "not", "inner"]
TOKENS += ["conversations", "messages", "::", "->>", "in", "is", "null", "fts", "cs"]
grammar = st.lists(st.sampled_from(TOKENS), max_size=24).map("".join)


@FUZZ
@given(
    table=st.sampled_from(["messages", "conversations"]),
    key=st.sampled_from(["select", "or", "and", "not.or", "order", "conversations.or", "messages.limit", "content"]),
    raw=grammar,
    method=st.sampled_from(["GET", "HEAD", "DELETE", "PATCH"]),
)
def test_query_grammar_never_500(
    fuzz_target: tuple[BackgroundServer, dict[str, str], dict[str, Any]], table: str, key: str, raw: str, method: str
) -> None:
    """select trees, logic trees and orders built from the grammar's own tokens: parse errors are 4xx."""
    server, headers, _ = fuzz_target
    body = b"{}" if method == "PATCH" else None
    response = httpx.request(
        method, f"{server.url}/rest/v1/{table}", params={key: raw}, content=body, headers=headers, timeout=10
    )
    _assert_client_error_shape(response)


@settings(FUZZ, max_examples=60)
@given(
    text=st.text(alphabet=st.characters(codec="utf-16", categories=("Cs", "Cc", "Lo", "So")), max_size=8),
    escape=st.booleans(),
)
def test_bodies_with_surrogates_and_control_characters_never_500(
    fuzz_target: tuple[BackgroundServer, dict[str, str], dict[str, Any]], text: str, escape: bool
) -> None:
    """Lone surrogates (only expressible as \\u escapes), NUL and other control characters in a JSON string."""
    server, headers, ids = fuzz_target
    value = json.dumps(text) if escape else '"' + text.encode("utf-8", "surrogatepass").decode("utf-8", "replace") + '"'
    raw = '{"conversation_id": "%s", "sender_id": "%s", "client_msg_id": %s, "content": %s}' % (  # noqa: UP031
        ids["conv"],
        ids["user"],
        value,
        value,
    )
    response = httpx.post(
        f"{server.url}/rest/v1/messages",
        content=raw.encode("utf-8", "surrogatepass"),
        headers={**headers, "Content-Type": "application/json"},
        timeout=10,
    )
    _assert_client_error_shape(response)


@settings(FUZZ, max_examples=80)
@given(
    table=st.sampled_from(["messages", "conversations"]),
    method=st.sampled_from(["POST", "PATCH"]),
    body=st.data(),
)
def test_hazardous_bodies_are_pgrst102_when_postgrest_would_not_parse_them(
    fuzz_target: tuple[BackgroundServer, dict[str, str], dict[str, Any]], table: str, method: str, body: st.DataObject
) -> None:
    """NaN, Infinity, lone surrogates, deep nesting, integers too long, invalid UTF-8, truncation: PGRST102 before
    any SQL (Aeson refuses them); what parses goes to Postgres, whose refusals (NUL: 22P05) are 400s too."""
    server, headers, ids = fuzz_target
    fields = {"conversation_id": ids["conv"], "sender_id": ids["user"], "client_msg_id": "h", "content": "c"}
    raw = body.draw(fuzzing.hazard_json(fields if table == "messages" else {"is_group": False}))
    query = "?id=eq.00000000-0000-0000-0000-000000000000" if method == "PATCH" else ""
    response = httpx.request(
        method,
        f"{server.url}/rest/v1/{table}{query}",
        content=raw,
        headers={**headers, "Content-Type": "application/json"},
        timeout=30,
    )
    _assert_client_error_shape(response)
    try:
        strict_json.loads(raw, big_floats=True)
    except strict_json.JsonBodyError:
        assert response.status_code == 400 and response.json()["code"] == "PGRST102", response.text
