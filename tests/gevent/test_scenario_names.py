"""Scenarios take the deployment's names from the session (`TargetConfig.names` → `SupabaseSession(names=...)`):
the messages table of sends, history and subscriptions, the storage bucket, the token function."""

from __future__ import annotations

from harness.clients.supabase.session import SupabaseSession
from harness.model.delivery import DeliveryTracker
from harness.model.target_config import Names
from harness.scenarios.chat import Chat
from harness.scenarios.delivery_recorder import DeliveryRecorder

CUSTOM = Names(messages="chat_messages", bucket="chat-files", livekit_function="meeting-token")


def _chat(session: SupabaseSession, table: str | None = None) -> Chat:
    recorder = DeliveryRecorder(DeliveryTracker("run", {}), timeout_s=5.0)
    return Chat(session, "anon", "u1", ["c1"], recorder, "run", lambda _sender: 1, table=table)


def test_chat_and_files_follow_the_session_names() -> None:
    session = SupabaseSession("http://127.0.0.1:9", "anon", names=CUSTOM)
    try:
        assert _chat(session).table == "chat_messages"
        assert _chat(session, "override").table == "override"
        assert session.bucket == "chat-files" and session.names.livekit_function == "meeting-token"
    finally:
        session.close()


def test_default_names_are_the_reference_stacks() -> None:
    session = SupabaseSession("http://127.0.0.1:9", "anon")
    try:
        assert _chat(session).table == "messages" and session.bucket == "attachments"
    finally:
        session.close()
