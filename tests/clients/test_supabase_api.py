"""The pure protocol builders (harness/clients/supabase/api.py): paths, headers, queries, bodies and frames, with
the reference stack's names and with a deployment's own."""

from __future__ import annotations

import json
import subprocess
import sys

from harness.clients.supabase import api
from harness.model.target_config import Names

CUSTOM = Names(messages="chat_messages", bucket="chat-files", livekit_function="meeting-token", region_header="x-rg")


def test_auth_paths() -> None:
    assert api.AUTH_HEALTH == "/auth/v1/health"
    assert api.SIGN_UP == "/auth/v1/signup"
    assert api.SIGN_IN == "/auth/v1/token?grant_type=password"
    assert api.REFRESH == "/auth/v1/token?grant_type=refresh_token"
    assert api.ADMIN_USERS == "/auth/v1/admin/users"
    assert api.admin_user("0b6f-42") == "/auth/v1/admin/users/0b6f-42"
    assert api.admin_users_page(2, 1000) == "/auth/v1/admin/users?page=2&per_page=1000"


def test_rest_paths_and_postgrest_queries() -> None:
    assert api.rest("messages") == "/rest/v1/messages"
    params = api.select_params("id", {"conversation_id": api.eq("c1")}, order="created_at.desc", limit=50, offset=5)
    assert api.rest("chat_messages", params) == (
        "/rest/v1/chat_messages?select=id&conversation_id=eq.c1&order=created_at.desc&limit=50&offset=5"
    )
    assert api.rest("t", [("id", api.in_(["a", "b"]))]) == "/rest/v1/t?id=in.%28a%2Cb%29"
    assert api.rest("t", [("title", api.like("p.*"))]) == "/rest/v1/t?title=like.p.%2A"
    assert api.pairs([("a", "eq.1"), ("a", "eq.2")]) == [("a", "eq.1"), ("a", "eq.2")]


def test_insert_params_name_the_columns_of_a_batch() -> None:
    assert api.insert_params({"a": 1}) == []
    assert api.insert_params([{"b": 1}, {"a": 2}], on_conflict="id") == [("on_conflict", "id"), ("columns", '"a","b"')]


def test_storage_and_function_paths_follow_the_names() -> None:
    assert api.storage_object(Names().bucket, "c1/a b.bin") == "/storage/v1/object/attachments/c1/a%20b.bin"
    assert api.storage_object(CUSTOM.bucket, "/c1/x.bin") == "/storage/v1/object/chat-files/c1/x.bin"
    assert api.storage_sign("b", "c/x") == "/storage/v1/object/sign/b/c/x"
    assert api.storage_list("b") == "/storage/v1/object/list/b"
    assert api.storage_bucket("b") == "/storage/v1/object/b"
    assert api.signed_url("object/sign/b/x?token=t") == "/storage/v1/object/sign/b/x?token=t"
    assert api.signed_url("http://h/storage/v1/x") == "http://h/storage/v1/x"
    assert api.function(api.DEFAULT_NAMES.livekit_function) == "/functions/v1/livekit-token"
    assert api.function(CUSTOM.livekit_function) == "/functions/v1/meeting-token"


def test_realtime_url_carries_the_key_and_vsn() -> None:
    assert (
        api.realtime_url("https://x.supabase.co/", "k")
        == "wss://x.supabase.co/realtime/v1/websocket?apikey=k&vsn=1.0.0"
    )
    assert api.realtime_url("http://127.0.0.1:1", "k", {"log_level": "info"}) == (
        "ws://127.0.0.1:1/realtime/v1/websocket?apikey=k&log_level=info&vsn=1.0.0"
    )


def test_headers() -> None:
    assert api.key_headers("anon") == {"apikey": "anon", "Authorization": "Bearer anon"}
    assert api.key_headers("anon", "user-jwt")["Authorization"] == "Bearer user-jwt"
    auth = api.auth_headers("anon", client_info="c/1")
    assert auth["X-Supabase-Api-Version"] == "2024-01-01" and auth["X-Client-Info"] == "c/1"
    assert auth["Content-Type"] == "application/json;charset=UTF-8"
    assert api.prefer() == "return=representation"
    assert (
        api.prefer(returning=False, upsert=True, count="exact")
        == "return=minimal,resolution=merge-duplicates,count=exact"
    )
    assert api.rest_headers("return=minimal", single=True) == {
        "Accept-Profile": "public",
        "Content-Profile": "public",
        "Content-Type": "application/json",
        "Prefer": "return=minimal",
        "Accept": "application/vnd.pgrst.object+json",
    }


def test_origin_region_reads_the_configured_header() -> None:
    headers = {"x-origin-region": "ap-southeast-1", "x-rg": "ap-northeast-1"}
    assert api.origin_region(headers) == "ap-southeast-1"
    assert api.origin_region(headers, CUSTOM) == "ap-northeast-1"
    assert api.origin_region({}, CUSTOM) is None


def test_bodies() -> None:
    assert api.password_body("e", "p") == {
        "email": "e",
        "password": "p",
        "gotrue_meta_security": {"captcha_token": None},
    }
    assert api.admin_user_body("e", "p", {"k": "v"}) == {
        "email": "e",
        "password": "p",
        "email_confirm": True,
        "user_metadata": {"k": "v"},
    }
    body, content_type = api.multipart('a"b.bin', b"\x00data", "image/png", 60)
    boundary = content_type.removeprefix("multipart/form-data; boundary=")
    assert body.startswith(f"--{boundary}\r\n".encode()) and body.endswith(f"\r\n--{boundary}--\r\n".encode())
    assert b'name="cacheControl"\r\n\r\n60\r\n' in body and b'filename="a%22b.bin"' in body
    assert b"Content-Type: image/png\r\n\r\n\x00data\r\n" in body


def test_join_frame_with_the_messages_binding() -> None:
    config = api.join_config([api.message_inserts("c1", CUSTOM)])
    frame = json.loads(api.join(api.topic("conversation:c1"), "3", config, "jwt"))
    assert frame == {
        "topic": "realtime:conversation:c1",
        "event": "phx_join",
        "ref": "3",
        "join_ref": "3",
        "payload": {
            "config": {
                "broadcast": {"ack": False, "self": False},
                "presence": {"key": "", "enabled": False},
                "private": False,
                "postgres_changes": [
                    {"event": "INSERT", "schema": "public", "table": "chat_messages", "filter": "conversation_id=eq.c1"}
                ],
            },
            "access_token": "jwt",
        },
    }
    assert api.message_inserts("c1")["table"] == "messages"
    assert "access_token" not in json.loads(api.join("realtime:x", "1", api.join_config(), None))["payload"]


def test_heartbeat_and_leave_frames() -> None:
    assert json.loads(api.heartbeat("7")) == {
        "topic": "phoenix",
        "event": "heartbeat",
        "payload": {},
        "ref": "7",
        "join_ref": None,
    }
    assert json.loads(api.leave("realtime:x", "9", "1"))["event"] == "phx_leave"


def test_broadcast_presence_and_token_frames() -> None:
    assert json.loads(api.broadcast("realtime:t", "typing", {"user_id": "u1"}, None, "1")) == {
        "topic": "realtime:t",
        "event": "broadcast",
        "payload": {"type": "broadcast", "event": "typing", "payload": {"user_id": "u1"}},
        "ref": None,
        "join_ref": "1",
    }
    assert json.loads(api.presence_track("realtime:t", {"online_at": 1}, "4", "1")) == {
        "topic": "realtime:t",
        "event": "presence",
        "payload": {"event": "track", "payload": {"online_at": 1}},
        "ref": "4",
        "join_ref": "1",
    }
    frame = json.loads(api.access_token("realtime:t", "jwt2", "5", "1"))
    assert (frame["event"], frame["payload"], frame["ref"]) == ("access_token", {"access_token": "jwt2"}, "5")
    assert api.AUTH_SETTINGS == "/auth/v1/settings"


def test_reading_server_frames() -> None:
    reply = {"topic": "realtime:x", "event": "phx_reply", "ref": "1", "payload": {"status": "ok", "response": {}}}
    assert api.is_reply(reply, "1") and not api.is_reply(reply, "2")
    assert api.reply_status(reply) == "ok" and api.reply_status({"event": "phx_reply"}) == ""
    change = {"event": "postgres_changes", "ref": None, "payload": {"ids": [1], "data": {"record": {"id": "m1"}}}}
    assert api.change_record(change) == {"id": "m1"}
    assert api.change_record(reply) is None and api.change_record({"event": "postgres_changes"}) is None


def test_the_pure_module_loads_neither_httpx_nor_gevent_and_the_sync_client_no_gevent() -> None:
    code = (
        "import sys; import harness.clients.supabase.api; "
        "print(sorted(m for m in ('httpx', 'gevent', 'locust') if m in sys.modules)); "
        "import harness.clients.supabase.sync; "
        "print(sorted(m for m in ('gevent', 'locust') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split("\n")[:2] == ["[]", "[]"]
