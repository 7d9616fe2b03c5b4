"""A plain locustfile: MessagingUser's calls without the harness's layers, for bench/run's end-to-end table.

    locust -f bench/bare_messaging.py --headless -u N -r N -t 40s --host http://127.0.0.1:<edge>
      env BARE_CREDENTIALS  a credentials file from `harness users provision` (users, their conversations)
          BARE_SAMPLES      where to write every request's (unix start, ms, ok) as JSON at the end

    on_start: sign in (POST /auth/v1/token) ─► one websocket (websocket-client) ─► phx_join per conversation with
              a postgres_changes INSERT binding ─► a reader greenlet: recv, heartbeat every 25 s, frames dropped
    tasks (wait 1–3 s, as MessagingUser): 4 × insert a message, 2 × read 50 messages, 1 × typing broadcast

The same names and request types as the harness fires (AUTH, REST, RT), so the totals compare; no delivery
recording, no run state, no result builder, no sketch: Locust's own stats and one list append per request.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import gevent
import websocket
from locust import FastHttpUser, between, events, task
from locust.env import Environment

from harness.model import keys
from harness.model.credentials import Credentials

HEARTBEAT_S = 25.0
_numbers = itertools.count()
_samples: list[tuple[float, float, bool]] = []
_started: list[float] = []
_credentials: list[Credentials] = []


@events.request.add_listener
def _record(start_time: float | None = None, response_time: float = 0.0, exception: Any = None, **_: Any) -> None:
    _samples.append((start_time or time.time(), response_time, exception is None))


@events.test_start.add_listener
def _test_start(environment: Environment, **_: Any) -> None:
    _started.append(time.time())


@events.quitting.add_listener
def _write(environment: Environment, **_: Any) -> None:
    out = os.environ.get("BARE_SAMPLES")
    if out:
        with open(out, "w") as f:
            json.dump({"started": _started[0] if _started else None, "samples": _samples}, f)


def credentials() -> Credentials:
    if not _credentials:
        _credentials.append(Credentials.load(os.environ["BARE_CREDENTIALS"]))
    return _credentials[0]


class BareMessagingUser(FastHttpUser):
    wait_time = between(1, 3)
    viewer = {"CloudFront-Viewer-Country": "SG"}  # what the harness's baseline group sends

    def on_start(self) -> None:
        creds = credentials()
        user = creds.users[next(_numbers) % len(creds.users)]
        self.user_id = user.id
        self.conversations = [c.id for c in creds.conversations_of(user.id)]
        self.seq = itertools.count(1)
        self.ws: websocket.WebSocket | None = None
        self.reader: gevent.Greenlet | None = None
        reply = self.client.post(
            "/auth/v1/token?grant_type=password",
            json={"email": user.email, "password": user.password},
            headers={"apikey": keys.ANON_KEY, **self.viewer},
            name="sign in",
        )
        token = reply.json()["access_token"]
        self.headers = {"apikey": keys.ANON_KEY, "Authorization": f"Bearer {token}", **self.viewer}
        self.subscribe(token)

    def on_stop(self) -> None:
        if self.reader is not None:
            self.reader.kill(block=False)
        if self.ws is not None:
            with contextlib.suppress(OSError):
                self.ws.shutdown()

    def fire(self, name: str, started: float, t0: float, exception: BaseException | None = None) -> None:
        self.environment.events.request.fire(
            request_type="RT", name=name, response_time=(time.perf_counter() - started) * 1000,
            response_length=0, exception=exception, context={}, start_time=t0,
        )  # fmt: skip

    def subscribe(self, token: str) -> None:
        base = self.host.replace("http://", "ws://").replace("https://", "wss://")
        url = f"{base}/realtime/v1/websocket?{urlencode({'apikey': keys.ANON_KEY, 'vsn': '1.0.0'})}"
        t0, started = time.time(), time.perf_counter()
        try:
            ws = websocket.create_connection(url, header=[f"{k}: {v}" for k, v in self.viewer.items()], timeout=10)
        except (websocket.WebSocketException, OSError) as exc:
            self.fire("connect", started, t0, exc)
            return
        self.fire("connect", started, t0)
        self.ws = ws
        for n, conversation in enumerate(self.conversations, start=1):
            binding = {"event": "INSERT", "schema": "public", "table": "messages",
                       "filter": f"conversation_id=eq.{conversation}"}  # fmt: skip
            config = {"broadcast": {"ack": False, "self": False}, "presence": {"key": "", "enabled": False},
                      "private": False, "postgres_changes": [binding]}  # fmt: skip
            payload = {"config": config, "access_token": token}
            frame = {"topic": f"realtime:conversation:{conversation}", "event": "phx_join", "payload": payload,
                     "ref": str(n), "join_ref": str(n)}  # fmt: skip
            t0, started = time.time(), time.perf_counter()
            ws.send(json.dumps(frame))
            while True:  # the reply to this join (change frames may come first)
                message = json.loads(ws.recv())
                if message.get("event") == "phx_reply" and message.get("ref") == str(n):
                    ok = message.get("payload", {}).get("status") == "ok"
                    self.fire("join postgres_changes", started, t0, None if ok else RuntimeError("join refused"))
                    break
        self.reader = gevent.spawn(self.read)

    def read(self) -> None:
        """Drop every frame; heartbeat as realtime-py does."""
        ws = self.ws
        assert ws is not None
        ws.settimeout(HEARTBEAT_S)
        refs = itertools.count(1000)
        next_beat = time.monotonic() + HEARTBEAT_S
        while True:
            try:
                ws.recv()
            except websocket.WebSocketTimeoutException:
                pass
            except (websocket.WebSocketException, OSError):
                return
            if time.monotonic() >= next_beat:
                ws.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": str(next(refs))}))
                next_beat = time.monotonic() + HEARTBEAT_S

    @task(4)
    def send_message(self) -> None:
        conversation = self.conversations[next(self.seq) % len(self.conversations)]
        seq = next(self.seq)
        row = {"conversation_id": conversation, "sender_id": self.user_id,
               "client_msg_id": f"bare-{uuid.uuid4().hex}", "content": f"load test message {seq}",
               "metadata": {"seq": seq, "t_ms": time.time() * 1000}}  # fmt: skip
        headers = {**self.headers, "Content-Type": "application/json", "Prefer": "return=minimal"}
        self.client.post("/rest/v1/messages", data=json.dumps(row), headers=headers, name="insert messages")

    @task(2)
    def read_history(self) -> None:
        conversation = self.conversations[next(self.seq) % len(self.conversations)]
        path = (f"/rest/v1/messages?select=id,sender_id,content,kind,attachment_path,created_at"
                f"&conversation_id=eq.{conversation}&order=created_at.desc&limit=50")  # fmt: skip
        self.client.get(path, headers=self.headers, name="select messages")

    @task(1)
    def typing(self) -> None:
        if self.ws is None or not self.conversations:
            return
        topic = f"realtime:conversation:{self.conversations[0]}"
        frame = {"topic": topic, "event": "broadcast", "ref": None, "join_ref": "1",
                 "payload": {"type": "broadcast", "event": "typing", "payload": {"user_id": self.user_id}}}  # fmt: skip
        t0, started = time.time(), time.perf_counter()
        try:
            self.ws.send(json.dumps(frame))
        except (websocket.WebSocketException, OSError) as exc:
            self.fire("broadcast", started, t0, exc)
            return
        self.fire("broadcast", started, t0)
