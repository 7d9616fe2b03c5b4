"""Meetings for one signed-in user: a join token, `/rtc` join, timed pings for a stay, leave.

The LiveKit client's own `LIVEKIT join` and `LIVEKIT ping` events are renamed on their way out to the gated
names, so each join and ping is counted once:

    LIVEKIT join  ─► MEETING meeting.join   connect → JoinResponse, ms
    LIVEKIT ping  ─► MEETING meeting.rtt    ping_req → pong_resp, ms
    (LIVEKIT leave, LIVEKIT connection keep their names)

A participant that never publishes media is dropped by the server after its join timeout (60 s on LiveKit and
the stand-in), so a stay must be shorter (ScenarioSettings checks it).
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import gevent

from harness.clients.events import RequestEvent, RequestFailed
from harness.clients.livekit import LiveKitClient
from harness.clients.supabase.session import SupabaseSession
from harness.model.metrics import MEETING_JOIN_NAME, MEETING_RTT_NAME, MEETING_TYPE

if TYPE_CHECKING:
    from harness.scenarios.base import AccountUser

MEETING = MEETING_TYPE
JOIN_NAME = MEETING_JOIN_NAME
RTT_NAME = MEETING_RTT_NAME
RENAMES: Mapping[tuple[str, str], tuple[str, str]] = {
    ("LIVEKIT", "join"): (MEETING, JOIN_NAME),
    ("LIVEKIT", "ping"): (MEETING, RTT_NAME),
}


class RenamedEvent:
    """A request event that renames some (request_type, name) pairs before passing each firing on."""

    def __init__(self, inner: RequestEvent, renames: Mapping[tuple[str, str], tuple[str, str]] = RENAMES) -> None:
        self.inner = inner
        self.renames = renames

    def fire(self, **kwargs: Any) -> Any:
        renamed = self.renames.get((kwargs.get("request_type", ""), kwargs.get("name", "")))
        if renamed is not None:
            kwargs["request_type"], kwargs["name"] = renamed
        return self.inner.fire(**kwargs)


def attend(livekit: LiveKitClient, token: str, url: str, stay_s: float, ping_interval_s: float) -> bool:
    """Join, ping every `ping_interval_s` until `stay_s` has passed or the connection drops, leave. True when the
    whole stay was spent connected."""
    joined = livekit.join(token, url)
    connection = joined.connection
    if connection is None:
        return False
    deadline = time.monotonic() + stay_s
    stayed = True
    try:
        while True:
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                break
            gevent.sleep(min(ping_interval_s, left_s))
            if not connection.connected:
                stayed = False
                break
            if time.monotonic() < deadline and isinstance(connection.ping(), RequestFailed):
                stayed = False
    finally:
        connection.leave()  # also when Locust kills the user mid-meeting
    return stayed


class Meeting:
    """Meetings of one user: each `meet` picks one of its conversations as the room."""

    def __init__(
        self,
        livekit: LiveKitClient,
        session: SupabaseSession,
        user_id: str,
        conversations: list[str],
        *,
        stay_s: float,
        ping_interval_s: float,
        url: str | None = None,
        allow_url: Callable[[str], bool] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.livekit = livekit
        self.url = url
        """LIVEKIT_URL when configured: wins over the URL the token function names (a group's shaped path)."""
        self.allow_url = allow_url
        """Whether a URL the token function named may be joined (the target's allow-list: RunState.check_url)."""
        self.session = session
        self.user_id = user_id
        self.conversations = conversations
        self.stay_s = stay_s
        self.ping_interval_s = ping_interval_s
        self.rng = rng or random.Random()

    def meet(self) -> bool:
        if not self.conversations:
            return False
        room = self.rng.choice(self.conversations)
        token = self.livekit.join_token(self.user_id, room, self.session)
        if isinstance(token, RequestFailed):
            return False  # the FUNC call already fired its failure (or minting is impossible: see join_token)
        url = self.url or token[1]
        if self.url is None and self.allow_url is not None and not self.allow_url(url):
            return False  # a host nobody allowed: refused before any packet (the run ends with the reason)
        return attend(self.livekit, token[0], url, self.stay_s, self.ping_interval_s)

    def close(self) -> None:
        self.livekit.close()


def meeting_for(user: AccountUser) -> Meeting:
    target, settings = user.target, user.harness_state.settings
    assert user.session is not None
    secret = target.livekit_api_secret.reveal() if target.livekit_api_secret is not None else None
    livekit = LiveKitClient(
        target.livekit_url or target.supabase_url,  # without LIVEKIT_URL the token function names the server
        api_key=target.livekit_api_key,
        api_secret=secret,
        request_event=RenamedEvent(user.environment.events.request),
        user_class=type(user).__name__,
        group=user.user_group,
    )
    return Meeting(
        livekit,
        user.session,
        user.user_id,
        user.conversation_ids(),
        stay_s=settings.meeting_stay_s,
        ping_interval_s=settings.meeting_ping_interval_s,
        url=target.livekit_url,
        allow_url=functools.partial(
            user.harness_state.check_url, f"the LiveKit URL the {target.names.livekit_function} function returned"
        ),
        rng=user.rng,
    )
