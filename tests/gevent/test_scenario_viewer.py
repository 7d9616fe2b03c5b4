"""Viewer country on the local stack: a CN user's HTTP calls and Realtime handshake reach Japan via the edge; a
returning web visitor revalidates with its normal Accept-Encoding."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from scenario_runs import load_locustfile, quick, run_users

from harness.clients.events import ListEvent, Reporter
from harness.clients.http import Transport
from harness.clients.supabase.realtime import RealtimeClient
from harness.clients.supabase.session import SupabaseSession
from harness.model import keys
from harness.model.credentials import Credentials
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts
from harness.scenarios.provisioning import provision_users, remove_users
from harness.scenarios.settings import ScenarioSettings
from harness.scenarios.viewer import viewer_headers
from harness.scenarios.web import Expect, WebShell


@pytest.fixture(scope="module")
def stack() -> Iterator[ReferenceStack]:
    with ReferenceStack(StackConfig(ports=StackPorts.any(), pieces=("primary", "replica", "livekit", "edge"))) as s:
        yield s


@pytest.fixture(scope="module")
def credentials(stack: ReferenceStack) -> Iterator[tuple[Credentials, Path]]:
    creds, path = provision_users(stack.endpoints.edge_url, 4, 4)
    yield creds, path
    remove_users(stack.endpoints.edge_url, path, len(creds.users))


def test_session_and_realtime_handshake_carry_the_country(
    stack: ReferenceStack, credentials: tuple[Credentials, Path]
) -> None:
    user = credentials[0].users[0]
    events = ListEvent()
    cn = viewer_headers("CN")
    session = SupabaseSession(stack.endpoints.edge_url, keys.ANON_KEY, request_event=events, headers=cn)
    realtime = RealtimeClient(
        stack.endpoints.edge_url, keys.ANON_KEY, session=session, request_event=events, headers=cn
    )
    plain = RealtimeClient(stack.endpoints.edge_url, keys.ANON_KEY, request_event=events)
    try:
        assert session.sign_in(user.email, user.password).ok
        assert session.select("conversations", columns="id").origin_region == "ap-northeast-1"
        assert realtime.connect() and plain.connect()
        assert (realtime.origin_region, plain.origin_region) == ("ap-northeast-1", "ap-southeast-1")
        assert realtime.join(realtime.channel("viewer-test")) is None
    finally:
        realtime.close()
        plain.close()
        session.close()
    http = [e for e in events.fired if e["request_type"] in ("AUTH", "REST")]
    assert [e["context"]["origin_region"] for e in http] == ["ap-northeast-1"] * 2
    connects = [e for e in events.fired if e["name"] == "connect"]
    assert sorted(e["context"]["origin_region"] for e in connects) == ["ap-northeast-1", "ap-southeast-1"]
    [join] = [e for e in events.fired if e["name"] == "join broadcast"]
    assert join["exception"] is None and join["context"]["origin_region"] == "ap-northeast-1"


def test_a_returning_visitor_revalidates_with_br(stack: ReferenceStack) -> None:
    """The edge answers the revalidation 304 with `Content-Encoding: br` and no body, which the transport once
    tried to decompress (and raised); now it is a plain 304."""
    events = ListEvent()
    shell = WebShell(Transport(stack.endpoints.edge_url, Reporter(request_event=events)), "gzip, deflate, br")
    try:
        assert shell.revalidate() and shell.etag is not None and shell.etag.endswith('-br"')
        revalidation = shell.get("again", "/main.dart.js", Expect(status=304), {"If-None-Match": shell.etag})
    finally:
        shell.close()
    assert revalidation.ok and revalidation.status == 304 and revalidation.headers.get("Content-Encoding") == "br"
    assert events.names(failed=True) == []


def test_a_cn_meeting_user_is_served_by_japan(stack: ReferenceStack, credentials: tuple[Credentials, Path]) -> None:
    meetings = load_locustfile("meetings")
    settings = ScenarioSettings(
        credentials_path=credentials[1], viewer_country="CN", meeting_stay_s=0.5, meeting_ping_interval_s=0.2
    )
    run = run_users(
        [quick(meetings.MeetingUser)], stack.endpoints.edge_url, 2, settings,
        min_s=1, max_s=10, done=lambda r: len(r.samples("MEETING meeting.join")) >= 2,
    )  # fmt: skip
    assert run.failures() == [] and run.user_errors == []
    regions = {e["context"].get("origin_region") for e in run.fired if e["request_type"] in ("AUTH", "FUNC")}
    assert regions == {"ap-northeast-1"}
