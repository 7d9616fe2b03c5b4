"""End to end with a deployment's own names (HARNESS_TABLE_*, HARNESS_STORAGE_BUCKET, HARNESS_LIVEKIT_FUNCTION,
HARNESS_REGION_HEADER): smoke, provisioning and the target check against the reference stack.

The reference stack serves only its own names, so `RenamingProxy` (renaming_proxy.py) stands in front of it
speaking the custom ones and refusing the stack's: a caller that ignored the configured names fails here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from renaming_proxy import RenamingProxy

from harness.clients.supabase import api
from harness.clients.supabase.sync import SupabaseClient
from harness.model import keys
from harness.model.target_config import Names, TargetConfig
from harness.refstack.stack import Endpoints, ReferenceStack, StackConfig, StackPorts
from harness.run.smoke import CHECK_NAMES, run_checklist
from harness.run.target import from_config, reference_config
from harness.run.target_check import probe_stack
from harness.run.users import cleanup, provision

CUSTOM = Names(
    profiles="app_profiles",
    conversations="chats",
    members="chat_members",
    messages="chat_messages",
    bucket="chat-files",
    livekit_function="meeting-token",
    region_header="x-served-from",
)
STACK_NAMES = {"profiles", "conversations", "conversation_members", "messages", "attachments", "livekit-token"}


@pytest.fixture(scope="module")
def stack() -> Iterator[ReferenceStack]:
    with ReferenceStack(StackConfig(ports=StackPorts.any())) as running:
        yield running


def _segments(requests: list[str]) -> set[str]:
    return {segment for request in requests for segment in request.split(" ", 1)[1].split("/")}


def test_smoke_checklist_passes_with_custom_names(stack: ReferenceStack) -> None:
    with RenamingProxy(stack.endpoints.edge_url, CUSTOM) as proxy:
        config = dataclasses.replace(reference_config(stack.endpoints), supabase_url=proxy.url, names=CUSTOM)
        results = run_checklist(from_config(config, reference=True))
    assert [r.name for r in results] == CHECK_NAMES
    assert [r.name for r in results if not r.passed] == [], [(r.name, r.message) for r in results]
    segments = _segments(proxy.requests)
    assert {"chats", "chat_members", "chat_messages", "chat-files", "meeting-token"} <= segments
    assert not segments & STACK_NAMES
    assert proxy.joined_tables == ["chat_messages"]
    by_name = {r.name: r for r in results}
    assert "from ap-southeast-1" in by_name["health"].message  # read from x-served-from
    assert "CN viewers served by ap-northeast-1" in by_name["china_routing"].message


def test_smoke_with_the_default_names_fails_where_the_deployment_differs(stack: ReferenceStack) -> None:
    """The control: the proxy really refuses the stack's names, so the test above proves smoke used the custom ones."""
    with RenamingProxy(stack.endpoints.edge_url, CUSTOM) as proxy:
        config = dataclasses.replace(reference_config(stack.endpoints), supabase_url=proxy.url)
        results = run_checklist(from_config(config, reference=True))
    failed = {r.name for r in results if not r.passed}
    assert failed == {"message_realtime", "meeting_join", "file_transfer", "rls_stranger", "china_routing"}


def test_provisioning_and_cleanup_write_the_custom_tables(stack: ReferenceStack) -> None:
    direct = SupabaseClient(stack.endpoints.primary_url, keys.SERVICE_ROLE_KEY)  # the stack's own names
    with RenamingProxy(stack.endpoints.primary_url, CUSTOM) as proxy, direct:
        target = dataclasses.replace(TargetConfig.for_reference_stack(proxy.url), names=CUSTOM)
        credentials = provision(target, 4, 2, prefix="names", run_id="r1")
        ids = {"id": api.in_(c.id for c in credentials.conversations)}
        assert len(direct.select("conversations", filters=ids).json()) == len(credentials.conversations)
        removed = cleanup(target, credentials)
        assert (removed.users, removed.conversations) == (4, len(credentials.conversations))
        assert direct.select("conversations", filters=ids).json() == []
    segments = _segments(proxy.requests)
    assert {"app_profiles", "chats", "chat_members", "chat_messages"} <= segments
    assert not segments & STACK_NAMES


def test_target_check_reads_the_custom_region_header(stack: ReferenceStack) -> None:
    with RenamingProxy(stack.endpoints.primary_url, CUSTOM) as proxy:
        probes = probe_stack(Endpoints("127.0.0.1", {"primary": proxy.server.port}), CUSTOM)
    assert [(p.name, p.ok) for p in probes] == [("primary /health", True), ("primary sign-up, insert, read", True)]
    assert "x-served-from=ap-southeast-1" in probes[0].detail
    assert not _segments(proxy.requests) & STACK_NAMES
