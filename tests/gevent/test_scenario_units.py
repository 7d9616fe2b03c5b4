"""Scenario pieces without a server: settings messages, sizes, delivery samples, event renaming, web checks."""

from __future__ import annotations

import random

import pytest

from harness.clients.events import ListEvent, Reporter, RequestFailed
from harness.clients.http import Reply
from harness.errors import ConfigError
from harness.loadgen.plugin import failure_kind
from harness.model.delivery import DeliveryTracker, Envelope
from harness.model.metrics import ACKED_UPLOAD
from harness.scenarios.delivery_recorder import DeliveryRecorder
from harness.scenarios.files import Files
from harness.scenarios.meeting import RenamedEvent
from harness.scenarios.runstate import RunState
from harness.scenarios.settings import ScenarioSettings
from harness.scenarios.sizes import parse_sizes
from harness.scenarios.web import NO_CACHE, Expect, check, expected_encoding


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HARNESS_VIEWER_COUNTRY": "China"}, "HARNESS_VIEWER_COUNTRY: 'China' is not a two-letter country code"),
        ({"HARNESS_MEETING_STAY_S": "90"}, "HARNESS_MEETING_STAY_S: 90 s is not below the join timeout"),
        ({"HARNESS_FILE_SIZES": "20MB:1"}, "HARNESS_FILE_SIZES: '20MB' is outside 1KB..10MB (e.g. 100KB)"),
        ({"HARNESS_SCENARIO_WEIGHTS": "ChatUser=1"}, "HARNESS_SCENARIO_WEIGHTS: 'ChatUser=1' is not CLASS=WEIGHT"),
        ({"HARNESS_DELIVERY_TIMEOUT_S": "soon"}, "HARNESS_DELIVERY_TIMEOUT_S: 'soon' is not a positive number"),
    ],
)
def test_bad_settings_name_the_variable_and_the_valid_form(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        ScenarioSettings.from_env(env)


def test_settings_from_env() -> None:
    settings = ScenarioSettings.from_env(
        {"HARNESS_VIEWER_COUNTRY": "cn", "HARNESS_SCENARIO_WEIGHTS": "WebUser=3", "HARNESS_MEETING_STAY_S": "5"}
    )
    assert settings.viewer_country == "CN"
    assert settings.weights == {"MessagingUser": 0, "MeetingUser": 0, "FileTransferUser": 0, "WebUser": 3}
    assert settings.meeting_stay_s == 5.0


def test_sizes_stay_in_range_and_follow_weights() -> None:
    sizes = parse_sizes("10KB:9,10MB:1", "test")
    rng = random.Random(3)
    draws = [sizes.draw(rng) for _ in range(2000)]
    assert all(5_000 <= d <= 10_000_000 for d in draws)
    small = sum(d <= 15_000 for d in draws)
    assert 1600 < small < 1990  # about 90 % small


def test_recorder_fires_delivery_duplicate_reorder_and_loss() -> None:
    events = ListEvent()
    recorder = DeliveryRecorder(DeliveryTracker("run", {"c": ("alice", "bob")}), timeout_s=5.0)
    recorder.subscribe("bob", Reporter(request_event=events, user_class="MessagingUser", group="baseline"))
    first = Envelope("run", "alice", 1, 100.0, "c")
    second = Envelope("run", "alice", 2, 100.5, "c")
    third = Envelope("run", "alice", 3, 101.0, "c")
    for envelope in (first, second, third):
        assert recorder.sent(envelope) == 1
    recorder.received("bob", second.message_row(), now=100.6)
    recorder.received("bob", first.message_row(), now=100.7)  # lower seq after a higher one: reordered
    recorder.received("bob", first.message_row(), now=100.8)  # a second copy
    recorder.received("bob", {"metadata": None}, now=100.9)  # not a load-test message: ignored
    assert recorder.expire(now=107.0) == 1  # the third never came
    rows = [(e["name"], str(e["exception"]) if e["exception"] else None) for e in events.fired]
    assert rows == [
        ("message.delivery", None),
        ("message.delivery", None),
        ("message.reordered", None),
        ("message.delivery", 'message.delivery: duplicate "a second copy of a message already received"'),
        ("message.delivery", 'message.delivery: lost "not received within 5 s"'),
    ]
    assert events.fired[0]["response_time"] == pytest.approx(100.0)
    assert [e["context"].get("failure_kind") for e in events.fired[3:]] == ["duplicate", "lost"]
    assert {e["context"]["group"] for e in events.fired} == {"baseline"}


def test_renamed_event_renames_only_the_gated_names() -> None:
    events = ListEvent()
    renamed = RenamedEvent(events)
    for name in ("join", "ping", "leave"):
        renamed.fire(request_type="LIVEKIT", name=name, exception=None)
    assert events.names() == ["MEETING meeting.join", "MEETING meeting.rtt", "LIVEKIT leave"]


def test_expected_encoding_follows_accept_encoding() -> None:
    assert expected_encoding("gzip, deflate, br") == "br"
    assert expected_encoding("gzip, br;q=0") == "gzip"
    assert expected_encoding("identity") == "identity"
    assert expected_encoding("*") == "br"


def test_check_names_the_broken_header() -> None:
    good = {"Cache-Control": "no-cache", "ETag": '"x"', "Content-Encoding": "br", "Vary": "Accept-Encoding"}
    expect = Expect(cache=(NO_CACHE,), compressed=True, etag=True)
    assert check(Reply(200, b"", 1.0, headers=good), expect, "br") is None
    stale = {**good, "Cache-Control": "public, max-age=60"}
    assert check(Reply(200, b"", 1.0, headers=stale), expect, "br") == (
        "Cache-Control is 'public, max-age=60', expected no-cache"
    )
    plain = {k: v for k, v in good.items() if k != "Content-Encoding"}
    assert check(Reply(200, b"", 1.0, headers=plain), expect, "br") == "Content-Encoding is 'identity', expected 'br'"


def test_a_404_on_an_acknowledged_upload_is_filed_as_missing_not_as_an_error() -> None:
    """Downloads only ever name acknowledged uploads, so a 404 there is data loss (or a read served by a region the
    write has not reached), filed under its own kind; other failures keep theirs."""

    class Session:
        def __init__(self) -> None:
            self.calls: list[tuple[str, dict[str, object] | None]] = []

        def upload(self, path: str, data: bytes, content_type: str) -> Reply:
            return Reply(201, None, 1.0, "ap-southeast-1", None, {}, False)

        def download(self, path: str, context: dict[str, object] | None = None) -> Reply:
            self.calls.append((path, context))
            return Reply(200, b"", 1.0, "ap-southeast-1", None, {}, False)

    session = Session()
    state = RunState.__new__(RunState)
    state.files = {}
    files = Files(session, "me", ["conv"], state, parse_sizes("10KB:1", "t"), random.Random(1))  # type: ignore[arg-type]
    assert files.upload() and files.download()
    [(path, context)] = session.calls
    assert path.startswith("conv/") and context == {ACKED_UPLOAD: True}
    missing = RequestFailed("STORAGE download", 404, "not_found", "Object not found")
    assert failure_kind(missing, {ACKED_UPLOAD: True}) == "acked_object_missing"
    assert failure_kind(missing, {}) == "error"
    assert failure_kind(RequestFailed("STORAGE download", 500, "x", "y"), {ACKED_UPLOAD: True}) == "error"
