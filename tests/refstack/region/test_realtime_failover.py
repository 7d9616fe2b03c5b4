"""Realtime through a failover drill: the replica decodes while it is a standby, keeps its slot through promotion,
and the old primary, rewound into a standby of the new one (failback), makes its slot again and carries on.

    Singapore (primary) ──streaming──► Japan (replica)     subscribers on both
    promote Japan                                          Japan's slot survives: no change is missed
    demote Singapore onto Japan (pg_rewind)                Singapore's feed makes its slot again (a logged gap)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import httpx
import pytest

from harness.procs.serving import BackgroundServer, background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from tests.refstack.region.conftest import SERVICE_HEADERS as SERVICE
from tests.refstack.region.test_realtime import Client, is_change
from tests.refstack.region.test_realtime_wal import insert_message, sql_conversation, sql_user, subscribed


@pytest.fixture
def pair() -> Iterator[tuple[BackgroundServer, BackgroundServer]]:
    with background(lambda: build_app(RegionConfig())) as primary:
        config = RegionConfig(region="ap-northeast-1", role="replica", primary_url=primary.url)
        with background(lambda: build_app(config)) as replica:
            yield primary, replica


def _contents(client: Client, window_s: float = 0.4) -> list[str]:
    return [f["payload"]["data"]["record"]["content"] for f in client.quiet(window_s) if is_change(f)]


def test_decoding_follows_promotion_and_failback(
    pair: tuple[BackgroundServer, BackgroundServer], caplog: pytest.LogCaptureFixture
) -> None:
    singapore, japan = pair
    alice, token = sql_user(singapore)
    conversation = sql_conversation(singapore, alice, [])
    on_singapore, on_japan = subscribed(singapore, token), subscribed(japan, token)
    insert_message(singapore, conversation, alice, "one")
    assert on_japan.until(is_change, timeout_s=10)["payload"]["data"]["record"]["content"] == "one"
    assert on_singapore.until(is_change)["payload"]["data"]["record"]["content"] == "one"

    assert httpx.post(f"{japan.url}/_admin/promote", headers=SERVICE, timeout=30).status_code == 200
    insert_message(japan, conversation, alice, "two")  # the first commit of the new timeline
    assert on_japan.until(is_change)["payload"]["data"]["record"]["content"] == "two"

    with caplog.at_level(logging.WARNING, logger="harness.refstack.region.realtime"):
        body = {"primary_url": japan.url}
        demoted = httpx.post(f"{singapore.url}/_admin/demote", headers=SERVICE, json=body, timeout=120)
        assert demoted.status_code == 200, demoted.text
        # Changes committed before Singapore's slot exists again are not its subscribers' (the log names the
        # gap): keep writing until one arrives.
        deadline, sent = time.monotonic() + 30, 0
        while "after failback" not in " ".join(_contents(on_singapore)):
            assert time.monotonic() < deadline, "the old primary's feed did not resume"
            sent += 1
            insert_message(japan, conversation, alice, f"after failback {sent}")
    assert any("made again" in r.getMessage() for r in caplog.records)
    assert _contents(on_japan) == [f"after failback {n}" for n in range(1, sent + 1)]  # Japan lost none
