"""The region header is the deployment's (`Names.region_header`, HARNESS_REGION_HEADER): under load the origin-region
tallies (`Reply.origin_region` and every event's `context.origin_region`) read it from HTTP replies and from the
Realtime handshake, through `SupabaseSession` → `Transport` and the chat scenario's `RealtimeClient`.

The reference stack names its region in `x-origin-region` only, so tests/clients/renaming_proxy.py, run here as a
child process (asyncio cannot run in this gevent-patched one), stands in front of the primary region and renames it
to `X-Served-From` (and the messages table to `chat_messages`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.clients.events import ListEvent
from harness.clients.http import Reply
from harness.clients.livekit import LiveKitClient
from harness.clients.supabase.realtime import RealtimeClient
from harness.clients.supabase.session import SupabaseSession
from harness.model import keys
from harness.model.delivery import DeliveryTracker
from harness.model.target_config import Names
from harness.procs.piece import PieceProcess
from harness.refstack.stack import PRIMARY_REGION, ReferenceStack
from harness.scenarios.chat import Chat
from harness.scenarios.delivery_recorder import DeliveryRecorder

CUSTOM = Names(messages="chat_messages", region_header="X-Served-From")
"""Mixed case on purpose: websocket-client lower-cases the handshake's header names."""
PROXY_DIR = Path(__file__).resolve().parents[1] / "clients"


@pytest.fixture(scope="module")
def proxy_url(stack: ReferenceStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    options = {"upstream": stack.endpoints.primary_url, "names": dataclasses.asdict(CUSTOM)}
    log_path = tmp_path_factory.mktemp("renaming-proxy") / "renaming-proxy.log"
    with pytest.MonkeyPatch.context() as patch:  # the child imports renaming_proxy from tests/clients
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(PROXY_DIR), os.environ.get("PYTHONPATH")])))
        proxy = PieceProcess("renaming-proxy", "renaming_proxy:build_app", log_path, options=options)
    try:
        yield f"http://127.0.0.1:{proxy.port}"
    finally:
        proxy.stop()


def _session(url: str, new_user: Callable[[], tuple[str, str]], events: ListEvent, **kwargs: Any) -> SupabaseSession:
    email, password = new_user()
    session = SupabaseSession(url, keys.ANON_KEY, request_event=events, **kwargs)
    session.sign_in(email, password).raise_for_error()
    return session


def _chat(session: SupabaseSession, conversation_id: str) -> Chat:
    recorder = DeliveryRecorder(DeliveryTracker("run", {}), timeout_s=5.0)
    return Chat(session, keys.ANON_KEY, str(session.user_id), [conversation_id], recorder, "run", lambda _s: 1)


def test_a_custom_region_header_is_tallied_over_http_and_the_realtime_handshake(
    proxy_url: str, new_user: Callable[[], tuple[str, str]], conversation: Callable[..., str]
) -> None:
    events = ListEvent()
    alice = _session(proxy_url, new_user, events, names=CUSTOM)
    bob = _session(proxy_url, new_user, events, names=CUSTOM)
    chat = None
    try:
        conversation_id = conversation(alice, bob)
        listed = bob.select(CUSTOM.messages, filters={"conversation_id": f"eq.{conversation_id}"})
        assert listed.ok and listed.origin_region == PRIMARY_REGION
        chat = _chat(bob, conversation_id)  # the scenario passes the session's region header to its RealtimeClient
        assert chat.realtime.region_header == "X-Served-From"
        assert chat.subscribe()
        assert chat.realtime.origin_region == PRIMARY_REGION
    finally:
        if chat is not None:
            chat.close()
        alice.close()
        bob.close()
    assert events.names(failed=True) == []
    http = [e for e in events.fired if e["request_type"] in ("AUTH", "REST")]
    assert {"AUTH sign-in", "REST insert conversations", "REST select chat_messages"} <= {
        f"{e['request_type']} {e['name']}" for e in http
    }
    assert {e["context"]["origin_region"] for e in http} == {PRIMARY_REGION}
    realtime = [e for e in events.fired if e["request_type"] == "RT"]
    assert [e["name"] for e in realtime] == ["connect", "join postgres_changes"]
    assert {e["context"]["origin_region"] for e in realtime} == {PRIMARY_REGION}


def test_the_default_header_finds_no_region_where_the_deployment_names_it_otherwise(
    proxy_url: str, new_user: Callable[[], tuple[str, str]]
) -> None:
    """The control: the proxy really drops `x-origin-region`, so the test above proves the custom name was read."""
    events = ListEvent()
    session = _session(proxy_url, new_user, events)  # default names
    plain = RealtimeClient(proxy_url, keys.ANON_KEY, session=session, request_event=events)
    custom = RealtimeClient(
        proxy_url, keys.ANON_KEY, session=session, request_event=events, region_header=CUSTOM.region_header
    )
    try:
        assert session.select("conversations", columns="id").origin_region == ""
        assert plain.connect() and custom.connect()
        assert (plain.origin_region, custom.origin_region) == ("", PRIMARY_REGION)
    finally:
        plain.close()
        custom.close()
        session.close()
    assert [e["context"]["origin_region"] for e in events.fired] == ["", "", "", PRIMARY_REGION]


def test_a_token_function_reply_without_a_token_names_the_configured_function() -> None:
    class TokenlessSession:
        names = Names(livekit_function="meeting-token")

        def livekit_token(self, room: str) -> Reply:
            return Reply(200, {}, 1.0)

    client = LiveKitClient("ws://127.0.0.1:9")  # no secret: the token must come from the function
    try:
        failure = client.join_token("alice", "room-1", session=TokenlessSession())
    finally:
        client.close()
    assert not isinstance(failure, tuple)
    assert failure.name == "FUNC meeting-token"
    assert str(failure).startswith("FUNC meeting-token: 200 bad_body")
