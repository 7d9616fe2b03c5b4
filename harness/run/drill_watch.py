"""What the drill watches besides the load: realtime, meetings, and the replication lag.

RealtimeWatch  one subscriber on a writer's conversation through the edge; when its socket dies (or stays
               silent while that writer's messages are acknowledged) it reconnects and rejoins, and records
               the first change received after each reconnect, and any message received twice
MeetingWatch   after the fault, tries a meeting join every second (the livekit-token function through the
               edge, then LiveKit's /rtc websocket) until one succeeds
LagWatch       the primary's replication lag every half second (the new primary's after a failover)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import websocket

from harness.clients.sockets import NO_REDIRECTS
from harness.clients.supabase import api
from harness.clients.supabase.sync import SupabaseClient
from harness.model.hosts import is_loopback_url
from harness.run.ledger import Recorder, Writer

SOCKET_TIMEOUT_S = 2.0
SILENT_RECONNECT_S = 5.0
"""A socket that hears nothing this long while its writer is acknowledged is stale (a client's heartbeat timeout)."""


class RealtimeWatch:
    def __init__(self, client: SupabaseClient, writer: Writer, recorder: Recorder,
                 acked_recently: Callable[[], bool]) -> None:  # fmt: skip
        self.client = client
        self.writer = writer
        self.recorder = recorder
        self.acked_recently = acked_recently
        self.stop = threading.Event()
        self.received_at: dict[str, float] = {}
        """client id → drill second it was first received."""
        self.duplicates = 0
        self.drops = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="realtime-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def halt(self) -> None:
        self.stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def back_after(self, acked: dict[str, float], since_t: float) -> float | None:
        """When realtime was back: the first receipt of a message acknowledged at or after `since_t` (written to
        the new primary). A socket still open on the old primary hears none of those, so it does not count."""
        times = [t for cid, t in list(self.received_at.items()) if acked.get(cid, -1.0) >= since_t]
        return min(times, default=None)

    def _on_change(self, record: dict[str, Any]) -> None:
        client_id = str(record.get("client_msg_id"))
        if client_id in self.received_at:
            self.duplicates += 1
        else:
            self.received_at[client_id] = self.recorder.now()

    def _session(self) -> None:
        sock = self.client.realtime(SOCKET_TIMEOUT_S)
        try:
            config = api.join_config([api.message_inserts(self.writer.conversation_id, self.client.names)])
            reply = sock.join(api.topic(f"drill-{self.writer.conversation_id}"), config, self.writer.token)
            if reply is None or api.reply_status(reply) != "ok":
                raise ConnectionError(f"realtime join refused: {reply}")
            last_heard = time.monotonic()
            while not self.stop.is_set():
                try:
                    frame = sock.next_frame(lambda f: api.change_record(f) is not None)
                except websocket.WebSocketTimeoutException:
                    frame = None
                if frame is not None:
                    record = api.change_record(frame)
                    assert record is not None
                    self._on_change(record)
                    last_heard = time.monotonic()
                elif time.monotonic() - last_heard > SILENT_RECONNECT_S and self.acked_recently():
                    raise ConnectionError("silent while its writer's messages are acknowledged")
        finally:
            sock.close()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self._session()
            except (OSError, websocket.WebSocketException, ConnectionError, ValueError) as exc:
                self.drops += 1
                self.last_error = f"{self.recorder.now():.1f} s: {type(exc).__name__}: {exc}"[:200]
                self.stop.wait(0.5)


class MeetingWatch:
    """Tries to join a meeting every `interval_s` from `start_after_t` on, until the first success."""

    def __init__(self, client: SupabaseClient, writer: Writer, recorder: Recorder, interval_s: float = 1.0) -> None:
        self.client = client
        self.writer = writer
        self.recorder = recorder
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.joined_at: float | None = None
        self.last_error: str | None = None
        self.attempts = 0
        self._thread: threading.Thread | None = None

    def join_once(self) -> None:
        grant = self.client.livekit_token(self.writer.conversation_id, token=self.writer.token)
        if grant.status_code != 200:
            raise ConnectionError(f"livekit-token: HTTP {grant.status_code}")
        body = grant.json()
        url = str(body["url"]).rstrip("/")
        if not is_loopback_url(url):  # drills run on the reference stack: a name elsewhere is never joined
            raise ValueError(f"the token function named {url}, not a loopback address (docs/safety.md)")
        sock = websocket.create_connection(f"{url}/rtc", timeout=SOCKET_TIMEOUT_S, redirect_limit=NO_REDIRECTS,
                                           header=[f"Authorization: Bearer {body['token']}"])  # fmt: skip
        try:
            sock.recv_data(control_frame=False)  # the join response: the server accepted the participant
        finally:
            sock.close()

    def _run(self) -> None:
        while not self.stop.is_set() and self.joined_at is None:
            self.attempts += 1
            try:
                self.join_once()
                self.joined_at = self.recorder.now()
            except (OSError, httpx.HTTPError, websocket.WebSocketException, ConnectionError, ValueError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"[:200]
                self.stop.wait(self.interval_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="meeting-watch", daemon=True)
        self._thread.start()

    def halt(self) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join(10)


class LagWatch:
    def __init__(self, urls: Callable[[], list[str]], recorder: Recorder, interval_s: float = 0.5) -> None:
        self.urls = urls
        """The regions to ask, first = the current primary (changes after a failover)."""
        self.recorder = recorder
        self.interval_s = interval_s
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag-watch", daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=1.0) as http:
            while not self.stop.is_set():
                for url in self.urls():
                    try:
                        body = http.get(f"{url}/_replication/status").json()
                    except (httpx.HTTPError, ValueError):
                        continue
                    if body.get("role") == "primary" and body.get("database_reachable", True):
                        self.recorder.record_lag(self.recorder.now(), float(body.get("replication_lag_ms") or 0.0))
                        break
                self.stop.wait(self.interval_s)

    def start(self) -> None:
        self._thread.start()

    def halt(self) -> None:
        self.stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
