"""Each locustfile's user class, run in-process for a few seconds against a real reference stack (edge, both
regions, LiveKit stand-in): zero failures, the expected request names, and the gated metric samples."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from scenario_runs import Run, load_locustfile, quick, run_users

from harness.model.credentials import Credentials
from harness.model.metrics import DELIVERY_NAME
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts
from harness.scenarios.provisioning import provision_users, remove_users
from harness.scenarios.settings import ScenarioSettings
from harness.scenarios.sizes import parse_sizes

FAST = ScenarioSettings(
    delivery_timeout_s=5.0,
    meeting_stay_s=1.5,
    meeting_ping_interval_s=0.3,
    file_sizes=parse_sizes("10KB:3,100KB:1,1MB:1", "test"),
)


@pytest.fixture(scope="module")
def stack() -> Iterator[ReferenceStack]:
    with ReferenceStack(StackConfig(ports=StackPorts.any(), health_interval_s=0.5)) as running:
        yield running


@pytest.fixture(scope="module")
def credentials(stack: ReferenceStack) -> Iterator[tuple[Credentials, Path]]:
    creds, path = provision_users(stack.endpoints.edge_url, 16, 4)
    yield creds, path
    remove_users(stack.endpoints.edge_url, path, len(creds.users))


@pytest.fixture
def settings(credentials: tuple[Credentials, Path]) -> ScenarioSettings:
    return replace(FAST, credentials_path=credentials[1])


def _no_failures(run: Run) -> None:
    assert run.failures() == []
    assert run.user_errors == []


def test_messaging_user_provisions_at_start_and_measures_delivery(stack: ReferenceStack) -> None:
    messaging = load_locustfile("messaging")
    settings = replace(FAST, provision_users=8)  # no credentials file: provisioned at test start, removed at quit
    run = run_users(
        [quick(messaging.MessagingUser)], stack.endpoints.edge_url, 8, settings,
        min_s=4, max_s=15, done=lambda r: len(r.samples(f"DELIVERY {DELIVERY_NAME}")) >= 10,
    )  # fmt: skip
    _no_failures(run)
    assert {
        "AUTH sign-in",
        "RT connect",
        "RT join postgres_changes",
        "REST insert messages",
        "REST select messages",
        f"DELIVERY {DELIVERY_NAME}",
    } <= run.names()
    deliveries = run.samples(f"DELIVERY {DELIVERY_NAME}")
    assert len(deliveries) >= 10
    assert all(d["context"]["user_class"] == "MessagingUser" and d["response_time"] >= 0 for d in deliveries)
    inserts = run.samples("REST insert messages")
    assert {i["context"]["origin_region"] for i in inserts} == {"ap-southeast-1"}
    assert run.state is not None and run.state.recorder is not None
    stats = run.state.recorder.tracker.stats
    assert stats.delivered > 0 and stats.lost == 0 and stats.duplicates == 0
    assert run.state.provisioned_path is None  # the users provisioned at start were removed at quit


def test_meeting_user_joins_pings_and_leaves(stack: ReferenceStack, settings: ScenarioSettings) -> None:
    meetings = load_locustfile("meetings")
    run = run_users(
        [quick(meetings.MeetingUser)], stack.endpoints.edge_url, 4, settings,
        min_s=2, max_s=15, done=lambda r: len(r.samples("LIVEKIT leave")) >= 4,
    )  # fmt: skip
    _no_failures(run)
    assert {"FUNC livekit-token", "MEETING meeting.join", "MEETING meeting.rtt", "LIVEKIT leave"} <= run.names()
    assert "LIVEKIT join" not in run.names() and "LIVEKIT ping" not in run.names()  # renamed, counted once
    joins = run.samples("MEETING meeting.join")
    assert joins and all(j["response_time"] > 0 and j["context"]["user_class"] == "MeetingUser" for j in joins)


def test_file_transfer_user_uploads_downloads_and_signs(stack: ReferenceStack, settings: ScenarioSettings) -> None:
    files = load_locustfile("files")
    wanted = {"STORAGE upload", "STORAGE download", "STORAGE sign", "STORAGE fetch signed"}
    run = run_users(
        [quick(files.FileTransferUser)], stack.endpoints.edge_url, 4, settings,
        min_s=2, max_s=20, done=lambda r: wanted <= r.names(),
    )  # fmt: skip
    _no_failures(run)
    assert wanted <= run.names()
    uploads = run.samples("STORAGE upload")
    assert all(1_000 <= u["context"]["bytes_sent"] <= 10_000_000 for u in uploads)
    downloads = run.samples("STORAGE download")
    assert all(d["context"]["bytes_received"] == d["response_length"] > 0 for d in downloads)


def test_web_user_checks_compression_and_cache_headers(stack: ReferenceStack, settings: ScenarioSettings) -> None:
    web = load_locustfile("web")
    wanted = {"WEB index.html", "WEB asset js", "WEB asset font", "WEB main.dart.js revalidate"}
    run = run_users(
        [quick(web.WebUser)], stack.endpoints.edge_url, 3, settings,
        min_s=2, max_s=20, done=lambda r: wanted <= r.names(),
    )  # fmt: skip
    _no_failures(run)
    assert wanted <= run.names()
    assert {s["context"]["content_encoding"] for s in run.samples("WEB index.html")} == {"br"}


def test_web_user_reports_a_broken_header_promise(stack: ReferenceStack, settings: ScenarioSettings) -> None:
    """Against a region (not the edge) there is no web shell: every page is a failure that says why."""
    web = load_locustfile("web")
    run = run_users([quick(web.WebUser)], stack.endpoints.primary_url, 1, settings, min_s=0.5, max_s=5,
                    done=lambda r: bool(r.failures()))  # fmt: skip
    assert run.user_errors == []
    assert any(f.startswith("WEB index.html: 404 bad_header") and "expected 200" in f for f in run.failures())


def test_mixed_runs_every_class_with_env_weights(stack: ReferenceStack, settings: ScenarioSettings) -> None:
    mixed = load_locustfile("mixed")
    classes = [quick(c, 0.2) for c in (mixed.MessagingUser, mixed.MeetingUser, mixed.FileTransferUser, mixed.WebUser)]
    for cls in classes:
        cls.weight = 1
    run = run_users(
        classes, stack.endpoints.edge_url, 8, settings, min_s=3, max_s=15,
        done=lambda r: {"MEETING meeting.join", f"DELIVERY {DELIVERY_NAME}", "STORAGE upload", "WEB index.html"}
        <= r.names(),
    )  # fmt: skip
    _no_failures(run)
    assert {e["context"]["user_class"] for e in run.fired} == {
        "MessagingUser", "MeetingUser", "FileTransferUser", "WebUser"
    }  # fmt: skip


def test_a_wrong_password_is_a_counted_failure_with_a_useful_message(
    stack: ReferenceStack, credentials: tuple[Credentials, Path], tmp_path: Path
) -> None:
    creds, _ = credentials
    bad = Credentials(
        creds.run_id, creds.prefix, creds.target_url, creds.group_size,
        [replace(u, password="wrong-password") for u in creds.users], creds.conversations,
    )  # fmt: skip
    bad.save(tmp_path / "bad.json")
    files = load_locustfile("files")
    run = run_users(
        [quick(files.FileTransferUser)], stack.endpoints.edge_url, 2,
        replace(FAST, credentials_path=tmp_path / "bad.json"), min_s=1, max_s=10, done=lambda r: len(r.failures()) >= 3,
    )  # fmt: skip
    assert run.user_errors == []
    assert run.names(failed=False) == set()
    assert run.failures() and all(
        f == 'AUTH sign-in: 400 invalid_credentials "Invalid login credentials"' for f in run.failures()
    )
