"""Messaging for one signed-in user: realtime subscriptions with delivery recording, sends, history, typing.

subscribe: one socket; per conversation a channel `conversation:<id>` with postgres_changes INSERT on
           messages filtered `conversation_id=eq.<id>` (RLS also applies) and broadcast (typing)
send:      Envelope (run, sender, seq, time) in metadata, client_msg_id from it; REST insert (409 23505 =
           already delivered); one retry with the same envelope when no answer came (status 0 or 5xx)
receive:   the reader greenlet hands each INSERT to the DeliveryRecorder (fires message.delivery)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.clients.supabase import api
from harness.clients.supabase.realtime import Channel, RealtimeClient
from harness.clients.supabase.session import SupabaseSession
from harness.model.delivery import Envelope
from harness.scenarios.delivery_recorder import DeliveryRecorder
from harness.scenarios.viewer import viewer_headers

if TYPE_CHECKING:
    from harness.scenarios.base import AccountUser

HISTORY_ROWS = 50
TYPING_EVENT = "typing"


class Chat:
    def __init__(
        self,
        session: SupabaseSession,
        anon_key: str,
        user_id: str,
        conversations: list[str],
        recorder: DeliveryRecorder,
        run_id: str,
        next_seq: Callable[[str], int],
        *,
        table: str | None = None,
        headers: dict[str, str] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.session = session
        self.user_id = user_id
        self.conversations = conversations
        self.recorder = recorder
        self.run_id = run_id
        self.next_seq = next_seq
        """Per-sender sequence numbers kept by the process, so a user replayed after a stop never reuses one."""
        self.table = table or session.names.messages
        """HARNESS_TABLE_MESSAGES (the session's names unless given)."""
        self.rng = rng or random.Random()
        reporter = session.reporter
        self.realtime = RealtimeClient(
            session.base_url,
            anon_key,
            session=session,
            request_event=reporter.request_event,
            user_class=reporter.user_class,
            group=reporter.group,
            headers=headers,
        )
        self.channels: dict[str, Channel] = {}
        self.subscribed = False

    def subscribe(self) -> bool:
        """Connect and join every conversation's channel; the recorder expects messages only once all joined."""
        if self.subscribed:
            return True
        if not self.realtime.connected and not self.realtime.connect():
            return False
        for conversation in self.conversations:
            channel = self.channels.get(conversation)
            if channel is None:
                binding = api.postgres_binding(self.table, "INSERT", f"conversation_id={api.eq(conversation)}")
                channel = self.realtime.channel(f"conversation:{conversation}", postgres_changes=[binding])
                channel.on_postgres_change(self._on_insert, "INSERT")
                self.channels[conversation] = channel
            if not channel.joined and self.realtime.join(channel) is not None:
                return False
        self.recorder.subscribe(self.user_id, self.realtime.reporter)
        self.subscribed = True
        return True

    def _on_insert(self, data: dict[str, Any]) -> None:
        record = data.get("record")
        if isinstance(record, dict):
            self.recorder.received(
                self.user_id, record, stamp=data.get("_hops"), commit_timestamp=data.get("commit_timestamp")
            )

    def send(self) -> bool:
        """Send one message to a conversation with listeners (any conversation if none has); True when stored."""
        if not self.conversations:
            return False
        with_audience = [c for c in self.conversations if self.recorder.audience(c, self.user_id)]
        conversation = self.rng.choice(with_audience or self.conversations)
        audience = self.recorder.audience(conversation, self.user_id)
        envelope = Envelope(self.run_id, self.user_id, self.next_seq(self.user_id), time.time(), conversation)
        row = envelope.message_row(f"load test message {envelope.seq}")
        self.recorder.sending(envelope)
        reply = self.session.insert(self.table, row, returning=False, duplicate_ok=True)
        if not reply.ok and (reply.status == 0 or reply.status >= 500):
            reply = self.session.insert(self.table, row, returning=False, duplicate_ok=True)  # same client_msg_id
        if reply.ok:
            self.recorder.sent(envelope, audience)
        return reply.ok

    def read_history(self) -> bool:
        """The latest 50 messages of one conversation, newest first (what opening a chat loads)."""
        if not self.conversations:
            return False
        conversation = self.rng.choice(self.conversations)
        return self.session.select(
            self.table,
            columns="id,sender_id,content,kind,attachment_path,created_at",
            filters={"conversation_id": f"eq.{conversation}"},
            order="created_at.desc",
            limit=HISTORY_ROWS,
        ).ok

    def type(self) -> bool:
        """A typing indicator: a broadcast on one joined conversation channel."""
        joined = [c for c in self.channels.values() if c.joined]
        if not joined:
            return False
        channel = self.rng.choice(joined)
        return self.realtime.broadcast(channel, TYPING_EVENT, {"user_id": self.user_id}) is None

    def close(self) -> None:
        self.recorder.unsubscribe(self.user_id)
        self.realtime.close()
        self.subscribed = False


def chat_for(user: AccountUser) -> Chat:
    """The Chat of a Locust user that has started (signed in or not)."""
    state = user.harness_state
    assert user.session is not None and state.recorder is not None
    return Chat(
        user.session,
        user.target.anon_key.reveal(),
        user.user_id,
        user.conversation_ids(),
        state.recorder,
        state.run_id,
        state.next_seq,
        table=user.target.names.messages,
        headers=viewer_headers(user.country),
        rng=user.rng,
    )
