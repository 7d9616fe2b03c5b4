"""The smoke checklist against a real reference stack: every check passes; a broken piece fails its check alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts
from harness.run.smoke import CHECK_NAMES, run_checklist
from harness.run.target import Target, from_reference
from tests.refstack.region.conftest import run_sql


@pytest.fixture(scope="module")
def stack() -> Iterator[ReferenceStack]:
    with ReferenceStack(StackConfig(ports=StackPorts.any())) as stack:
        yield stack


@pytest.fixture(scope="module")
def target(stack: ReferenceStack) -> Target:
    return from_reference(stack.endpoints)


def test_every_check_passes_on_the_reference_stack(target: Target) -> None:
    results = run_checklist(target)
    assert [r.name for r in results] == CHECK_NAMES
    assert [r.name for r in results if not r.passed] == [], [(r.name, r.message) for r in results]
    by_name = {r.name: r for r in results}
    assert "bob received alice's message over realtime" in by_name["message_realtime"].message
    assert "a stranger reads 0" in by_name["rls_stranger"].message
    assert "CN viewers served by ap-northeast-1" in by_name["china_routing"].message


def test_the_checklist_leaves_no_users_rows_or_files_behind(stack: ReferenceStack, target: Target) -> None:
    """Issue 14 item 3: the smoke users go with their conversation, memberships, messages and uploaded file."""
    results = run_checklist(target, china=False)
    assert all(r.passed for r in results), [(r.name, r.message) for r in results]
    left = run_sql(
        stack.endpoints.primary_url,
        """select (select count(*) from auth.users where email like 'smoke-%') as users,
                  (select count(*) from public.conversations where title = 'smoke') as conversations,
                  (select count(*) from public.messages m
                     where not exists (select 1 from public.conversations c where c.id = m.conversation_id)
                        or m.conversation_id in (select id from public.conversations where title = 'smoke'))
                    as messages,
                  (select count(*) from storage.objects o where o.bucket_id = 'attachments' and o.name like '%/smoke-%')
                    as files""",
    )
    assert dict(left[0]) == {"users": 0, "conversations": 0, "messages": 0, "files": 0}


def test_checks_become_smoke_checks_with_their_time(target: Target) -> None:
    check = run_checklist(target, china=False)[0].to_smoke_check()
    assert check.name == "health" and check.passed and check.message.endswith(" ms)")


def test_china_routing_runs_only_where_the_viewer_country_can_be_set(target: Target) -> None:
    remote_like = Target(url=target.url, env=target.env, reference=False)
    assert "china_routing" not in [r.name for r in run_checklist(remote_like)]


def test_a_missing_livekit_fails_the_meeting_check_alone() -> None:
    # No LiveKit stand-in: the token function still answers, the /rtc join cannot connect.
    config = StackConfig(ports=StackPorts.any(), pieces=("primary", "replica", "edge"))
    with ReferenceStack(config) as stack:
        results = {r.name: r for r in run_checklist(from_reference(stack.endpoints))}
    assert not results["meeting_join"].passed
    assert "Connection refused" in results["meeting_join"].message or "Errno" in results["meeting_join"].message
    assert "eyJ" not in results["meeting_join"].message  # no token in the message
    assert all(r.passed for name, r in results.items() if name != "meeting_join")


def test_a_dead_target_fails_every_check_with_a_reason() -> None:
    results = run_checklist(Target(url="http://127.0.0.1:9", env={"SUPABASE_ANON_KEY": "k"}))
    assert results and not any(r.passed for r in results)
    assert results[1].message.startswith("ConnectError")
    assert results[2].message == "not run: sign_in failed"
