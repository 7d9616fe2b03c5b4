"""`SupabaseClient` (harness/clients/supabase/sync.py) off the network: each call's method, path, headers and body,
with a deployment's own names (httpx.MockTransport records what would be sent)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from harness.clients.supabase.sync import SupabaseClient
from harness.model.target_config import Names

CUSTOM = Names(
    conversations="chats",
    messages="chat_messages",
    bucket="chat-files",
    livekit_function="meeting-token",
    region_header="x-served-from",
)


class Recorder:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json=[], headers={"x-served-from": "ap-northeast-1"})

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


@pytest.fixture
def sent() -> Recorder:
    return Recorder()


@pytest.fixture
def client(sent: Recorder) -> Iterator[SupabaseClient]:
    with httpx.Client(transport=httpx.MockTransport(sent)) as http:
        yield SupabaseClient("http://project.test/", "anon-key", names=CUSTOM, http=http)


def test_rest_calls_use_the_given_table_and_the_user_token(client: SupabaseClient, sent: Recorder) -> None:
    client.select(CUSTOM.messages, columns="id", filters={"conversation_id": "eq.c1"}, limit=1, token="user-jwt")
    assert sent.last.method == "GET"
    assert str(sent.last.url) == "http://project.test/rest/v1/chat_messages?select=id&conversation_id=eq.c1&limit=1"
    assert sent.last.headers["apikey"] == "anon-key" and sent.last.headers["authorization"] == "Bearer user-jwt"
    client.insert(CUSTOM.conversations, [{"id": "c1"}, {"id": "c2"}], returning=False)
    assert sent.last.url.path == "/rest/v1/chats" and sent.last.url.params["columns"] == '"id"'
    assert sent.last.headers["prefer"] == "return=minimal" and sent.last.headers["authorization"] == "Bearer anon-key"
    assert json.loads(sent.last.content) == [{"id": "c1"}, {"id": "c2"}]
    client.delete(CUSTOM.conversations, filters={"id": "in.(c1,c2)"})
    assert (sent.last.method, sent.last.url.path, sent.last.url.params["id"]) == (
        "DELETE",
        "/rest/v1/chats",
        "in.(c1,c2)",
    )


def test_storage_uses_the_configured_bucket(client: SupabaseClient, sent: Recorder) -> None:
    client.upload("c1/x.bin", b"bytes", token="user-jwt")
    assert sent.last.method == "POST" and sent.last.url.path == "/storage/v1/object/chat-files/c1/x.bin"
    assert sent.last.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert b'filename="x.bin"' in sent.last.content and b"\r\n\r\nbytes\r\n" in sent.last.content
    client.download("c1/x.bin", token="user-jwt", bucket="other")
    assert (sent.last.method, sent.last.url.path) == ("GET", "/storage/v1/object/other/c1/x.bin")


def test_the_token_function_is_the_configured_one(client: SupabaseClient, sent: Recorder) -> None:
    client.livekit_token("c1", token="user-jwt")
    assert sent.last.url.path == "/functions/v1/meeting-token" and json.loads(sent.last.content) == {"room": "c1"}
    assert sent.last.headers["authorization"] == "Bearer user-jwt"


def test_region_is_read_from_the_configured_header(client: SupabaseClient) -> None:
    assert client.region(client.auth_health()) == "ap-northeast-1"
    assert SupabaseClient("http://x", "k", http=client.http).region(client.auth_health()) is None


def test_auth_and_admin_calls(client: SupabaseClient, sent: Recorder) -> None:
    client.sign_in("a@example.test", "pw")
    assert str(sent.last.url) == "http://project.test/auth/v1/token?grant_type=password"
    assert json.loads(sent.last.content)["email"] == "a@example.test"
    assert sent.last.headers["x-supabase-api-version"] == "2024-01-01"
    client.sign_up("a@example.test", "pw")
    assert sent.last.url.path == "/auth/v1/signup"
    admin = client.with_key("service-key")
    admin.admin_create_user("a@example.test", "pw", {"harness_prefix": "p"})
    assert sent.last.url.path == "/auth/v1/admin/users" and sent.last.headers["apikey"] == "service-key"
    assert json.loads(sent.last.content)["email_confirm"] is True
    admin.admin_list_users(3, 100)
    assert sent.last.url.params["page"] == "3" and sent.last.url.params["per_page"] == "100"
    admin.admin_delete_user("u1")
    assert (sent.last.method, sent.last.url.path) == ("DELETE", "/auth/v1/admin/users/u1")


def test_the_key_never_shows_in_a_repr(client: SupabaseClient) -> None:
    assert "anon-key" not in repr(client) and "anon-key" not in repr(client.with_key("service-key"))
    assert "service-key" not in repr(client.with_key("service-key"))


def test_a_shared_pool_is_not_closed_by_a_client(client: SupabaseClient) -> None:
    client.with_key("other").close()
    client.close()
    assert not client.http.is_closed
