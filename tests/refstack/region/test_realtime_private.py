"""Private Realtime channels (`config.private: true`), authorised as Supabase does: row-level security on
`realtime.messages` (SELECT to join and receive, INSERT to send; `realtime.topic()` names the channel), deny by
default. Raw websockets for the anonymous client, realtime-py (supabase-py's async client) for signed-in users."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from realtime import RealtimeSubscribeStates

from harness.model import keys
from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from tests.refstack.region.conftest import PASSWORD, create_conversation, create_user, run_sql
from tests.refstack.region.test_realtime import Client

TIMEOUT_S = 5.0

POLICIES = """
-- Members of a conversation read and write its channel `conversation:<id>` (broadcast and presence).
create policy conversation_channel_read on realtime.messages for select to authenticated
  using (realtime.topic() like 'conversation:%'
         and split_part(realtime.topic(), ':', 2) in (select c::text from public.my_conversation_ids() as c));
create policy conversation_channel_write on realtime.messages for insert to authenticated
  with check (realtime.topic() like 'conversation:%'
              and split_part(realtime.topic(), ':', 2) in (select c::text from public.my_conversation_ids() as c));
-- Everyone signed in reads `announcements:*` broadcasts; nobody may send to them or use their presence.
create policy announcements_read on realtime.messages for select to authenticated
  using (realtime.topic() like 'announcements:%' and extension = 'broadcast');
"""


def refused(topic: str) -> str:
    return f"Unauthorized: You do not have permissions to read from this Channel topic: {topic}"


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    config = RegionConfig(data_dir=tmp_path_factory.mktemp("region"), bcrypt_cost=4)
    with background(lambda: build_app(config)) as server:
        yield server


@pytest.fixture(scope="module")
def policies(region: BackgroundServer) -> None:
    for statement in POLICIES.split(";\n"):
        if "create policy" in statement:
            run_sql(region.url, statement)


@pytest.fixture
def people(region: BackgroundServer) -> dict[str, Any]:
    """Alice and Bob share a conversation; Eve is signed in and a member of nothing."""
    out: dict[str, Any] = {}
    for name in ("alice", "bob", "eve"):
        email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
        user_id, token, _ = create_user(region.url, email)
        out[name] = {"id": user_id, "token": token, "email": email}
    out["conv"] = create_conversation(region.url, out["alice"]["token"], [out["bob"]["id"]])
    return out


def _broadcast(event: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"type": "broadcast", "event": event, "payload": payload}


def _rest_broadcast(region: BackgroundServer, topic: str, token: str, apikey: str = keys.ANON_KEY) -> int:
    headers = {"apikey": apikey, "Authorization": f"Bearer {token}"}
    url = f"{region.url}/realtime/v1/api/broadcast/{topic}/events/news?private=true"
    return httpx.post(url, headers=headers, json={"n": 1}, timeout=10).status_code


# -- deny by default ----------------------------------------------------------------------------------------------


def test_an_anonymous_client_can_neither_join_a_private_channel_nor_broadcast_into_it(
    region: BackgroundServer,
) -> None:
    topic = f"secret-{uuid.uuid4().hex[:8]}"
    listener = Client(region, apikey=keys.SERVICE_ROLE_KEY)  # service_role bypasses row-level security
    assert listener.join(topic, {"private": True})["payload"] == {"status": "ok", "response": {"postgres_changes": []}}
    anon = Client(region)
    reply = anon.join(topic, {"private": True, "broadcast": {"ack": True}})
    assert reply["payload"] == {"status": "error", "response": {"reason": refused(topic)}}
    ref = anon.send(f"realtime:{topic}", "broadcast", _broadcast("typing", {"who": "anon"}))
    assert anon.until(lambda f: f["ref"] == ref)["payload"] == {
        "status": "error",
        "response": {"reason": "unmatched topic"},
    }
    assert _rest_broadcast(region, topic, keys.ANON_KEY) == 202  # accepted, as Realtime does, and dropped
    bulk = {"messages": [{"topic": topic, "event": "news", "payload": {"n": 2}, "private": True}]}
    response = httpx.post(f"{region.url}/realtime/v1/api/broadcast", headers={"apikey": keys.ANON_KEY}, json=bulk)
    assert response.status_code == 202
    public = Client(region)  # the public channel of the same name is another topic
    public.join(topic, {"broadcast": {"ack": True}})
    public.send(f"realtime:{topic}", "broadcast", _broadcast("typing", {"who": "public"}))
    assert listener.quiet() == []
    assert _rest_broadcast(region, topic, keys.SERVICE_ROLE_KEY, keys.SERVICE_ROLE_KEY) == 202
    assert listener.next()["payload"] == _broadcast("news", {"n": 1})  # the listener does hear allowed senders


def test_a_signed_in_user_is_refused_while_no_policy_allows_them(region: BackgroundServer, people: Any) -> None:
    topic = f"nobody-{uuid.uuid4().hex[:8]}"
    states = asyncio.run(_subscribe_states(region, people["alice"]["email"], topic))
    assert states == [(RealtimeSubscribeStates.CHANNEL_ERROR, json.dumps({"reason": refused(topic)}))]


# -- policies -------------------------------------------------------------------------------------------------------


async def _signed_in(region: BackgroundServer, email: str) -> AsyncClient:
    options = AsyncClientOptions(auto_refresh_token=False, persist_session=False)
    client = await acreate_client(region.url, keys.ANON_KEY, options=options)
    await client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    return client


async def _subscribe_states(region: BackgroundServer, email: str, topic: str) -> list[tuple[Any, str | None]]:
    client = await _signed_in(region, email)
    states: list[tuple[Any, str | None]] = []
    try:
        channel = client.channel(topic, {"config": {"private": True}})
        await channel.subscribe(lambda state, err: states.append((state, None if err is None else str(err))))
        await client.remove_channel(channel)
    finally:
        await client.realtime.close()
    return states


async def _eventually(predicate: Callable[[], Any], timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.01)


@pytest.mark.usefixtures("policies")
def test_a_select_policy_admits_members_and_an_insert_policy_lets_them_broadcast(
    region: BackgroundServer, people: Any
) -> None:
    topic = f"conversation:{people['conv']}"

    async def scenario() -> None:
        alice = await _signed_in(region, people["alice"]["email"])
        bob = await _signed_in(region, people["bob"]["email"])
        heard: list[dict[str, Any]] = []
        states: list[RealtimeSubscribeStates] = []
        try:
            bob_channel = bob.channel(topic, {"config": {"private": True}}).on_broadcast("typing", heard.append)
            await bob_channel.subscribe(lambda state, _err: states.append(state))
            alice_channel = alice.channel(topic, {"config": {"private": True, "broadcast": {"ack": True}}})
            await alice_channel.subscribe(lambda state, _err: states.append(state))
            assert states == [RealtimeSubscribeStates.SUBSCRIBED] * 2
            await alice_channel.send_broadcast("typing", {"who": "alice"})
            await _eventually(lambda: heard)
            assert heard[0]["payload"] == {"who": "alice"}
        finally:
            await alice.realtime.close()
            await bob.realtime.close()

    asyncio.run(scenario())
    states = asyncio.run(_subscribe_states(region, people["eve"]["email"], topic))  # not a member
    assert states == [(RealtimeSubscribeStates.CHANNEL_ERROR, json.dumps({"reason": refused(topic)}))]


@pytest.mark.usefixtures("policies")
def test_without_an_insert_policy_broadcasts_and_presence_are_dropped(region: BackgroundServer, people: Any) -> None:
    topic = f"announcements:{uuid.uuid4().hex[:8]}"
    config = {"private": True, "broadcast": {"ack": True}, "presence": {"key": "k", "enabled": True}}
    alice, bob = Client(region), Client(region)
    assert alice.join(topic, config, people["alice"]["token"])["payload"]["status"] == "ok"
    assert bob.join(topic, config, people["bob"]["token"])["payload"]["status"] == "ok"
    ref = alice.send(f"realtime:{topic}", "broadcast", _broadcast("typing", {"who": "alice"}))
    assert alice.until(lambda f: f["ref"] == ref)["payload"] == {"status": "ok", "response": {}}  # acked, dropped
    ref = alice.send(f"realtime:{topic}", "presence", {"event": "track", "payload": {"online": True}})
    assert alice.until(lambda f: f["ref"] == ref)["payload"] == {"status": "ok", "response": {}}
    # No presence read policy: no presence_state after the join, no diff after a track.
    assert [f for f in bob.quiet() if f["event"].startswith("presence")] == []
    assert _rest_broadcast(region, topic, people["alice"]["token"]) == 202  # no INSERT policy: dropped too
    assert _rest_broadcast(region, topic, keys.SERVICE_ROLE_KEY, keys.SERVICE_ROLE_KEY) == 202
    assert bob.next()["payload"] == _broadcast("news", {"n": 1})
    assert bob.quiet() == []


@pytest.mark.usefixtures("policies")
def test_members_see_each_others_presence_and_rest_broadcasts_need_the_insert_policy(
    region: BackgroundServer, people: Any
) -> None:
    topic = f"conversation:{people['conv']}"
    config = {"private": True, "presence": {"key": "bob", "enabled": True}}
    bob = Client(region)
    assert bob.join(topic, config, people["bob"]["token"])["payload"]["status"] == "ok"
    assert bob.next()["event"] == "presence_state"
    alice = Client(region)
    alice.join(topic, {"private": True, "presence": {"key": "alice"}}, people["alice"]["token"])
    alice.send(f"realtime:{topic}", "presence", {"event": "track", "payload": {"online": True}})
    joined = bob.until(lambda f: f["event"] == "presence_diff")["payload"]["joins"]
    assert list(joined) == ["alice"]
    assert _rest_broadcast(region, topic, people["eve"]["token"]) == 202  # Eve is no member: dropped
    assert _rest_broadcast(region, topic, people["alice"]["token"]) == 202
    assert bob.until(lambda f: f["event"] == "broadcast")["payload"] == _broadcast("news", {"n": 1})
    assert [f for f in bob.quiet() if f["event"] == "broadcast"] == []


@pytest.mark.usefixtures("policies")
def test_a_token_refresh_to_someone_without_permission_shuts_the_channel(region: BackgroundServer, people: Any) -> None:
    topic = f"conversation:{people['conv']}"
    client = Client(region)
    assert client.join(topic, {"private": True}, people["alice"]["token"])["payload"]["status"] == "ok"
    client.send(f"realtime:{topic}", "access_token", {"access_token": people["eve"]["token"]})
    system = client.until(lambda f: f["event"] == "system")
    assert system["payload"] == {
        "channel": topic,
        "extension": "system",
        "status": "error",
        "message": f"You do not have permissions to read from this Channel topic: {topic}",
    }
    assert client.next()["event"] == "phx_close"


def test_service_role_and_claims_the_authenticator_cannot_take(region: BackgroundServer) -> None:
    topic = f"roles-{uuid.uuid4().hex[:8]}"
    assert Client(region).join(topic, {"private": True}, keys.SERVICE_ROLE_KEY)["payload"]["status"] == "ok"
    superuser = keys.sign({"role": "supabase_admin", "exp": int(time.time()) + 60})
    reply = Client(region).join(topic, {"private": True}, superuser)
    assert reply["payload"] == {"status": "error", "response": {"reason": refused(topic)}}


def test_a_read_replica_refuses_private_joins_it_cannot_authorise(
    region: BackgroundServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The check writes (and rolls back) probe rows, which a hot standby cannot: the join fails closed, with the
    code Realtime gives when it cannot set a channel's policies."""
    config = RegionConfig(
        region="ap-northeast-1",
        data_dir=tmp_path_factory.mktemp("replica"),
        role="replica",
        primary_url=region.url,
        bcrypt_cost=4,
    )
    with background(lambda: build_app(config)) as replica:
        client = Client(replica, apikey=keys.SERVICE_ROLE_KEY)
        reason = client.join("on-the-replica", {"private": True})["payload"]["response"]["reason"]
        assert reason.startswith("UnableToSetPolicies: private channels are authorised on the primary database")
        assert client.join("public-on-the-replica")["payload"]["status"] == "ok"
