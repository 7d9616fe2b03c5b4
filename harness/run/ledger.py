"""The drill's load: messaging users writing sequence-numbered messages through the edge, and readers.

    writer k: sign in ─► own conversation ─► loop: client id <run>:<k>:<seq> ─► INSERT messages
                 201 ─► acknowledged (kept in the ledger with its time)        ─► next seq
                 409 ─► an earlier try was stored (the unique client id): acknowledged now
                 else/timeout ─► the same client id again after the interval (a real client retries the same id)
    reader: select its writer's latest messages

Every request lands in a one-second bucket of its start time (sent, failed, latency): the drill's timeline. The
ledger of acknowledged ids is what RPO is measured against after the failover: an id acknowledged to the user and
missing from the new primary is a lost message. Threads and httpx, not Locust: the drill needs every single
acknowledgement back in this process, in order.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from harness.clients.supabase.sync import SupabaseClient
from harness.model.drill import DrillSample

PASSWORD_BYTES = 16


@dataclass
class _Bucket:
    sent: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


class Recorder:
    """Thread-safe per-second buckets of requests, from the drill's start (`t0`, time.monotonic())."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self._lock = threading.Lock()
        self._buckets: dict[int, _Bucket] = defaultdict(_Bucket)
        self.lag_ms: dict[int, float] = {}

    def now(self) -> float:
        return time.monotonic() - self.t0

    def record(self, started_t: float, ok: bool, latency_ms: float) -> None:
        with self._lock:
            bucket = self._buckets[int(started_t)]
            bucket.sent += 1
            bucket.failed += 0 if ok else 1
            bucket.latencies_ms.append(latency_ms)

    def record_lag(self, t: float, lag_ms: float) -> None:
        with self._lock:
            second = int(t)
            self.lag_ms[second] = max(lag_ms, self.lag_ms.get(second, 0.0))

    def samples(self, *, with_p95: bool = True) -> list[DrillSample]:
        """The timeline so far. `with_p95=False` skips sorting every second's latencies: the drill's control loop
        asks for the error rates four times a second while the load runs in this process."""
        with self._lock:
            seconds = sorted(set(self._buckets) | set(self.lag_ms))
            buckets = {t: self._buckets.get(t, _Bucket()) for t in seconds}
            return [
                DrillSample(t, b.sent, b.failed, _p95(b.latencies_ms) if with_p95 else None, self.lag_ms.get(t))
                for t, b in buckets.items()
            ]


@dataclass
class Writer:
    index: int
    email: str
    password: str
    user_id: str = ""
    token: str = ""
    conversation_id: str = ""


class Ledger:
    """Writers and readers against `base_url` (the edge), recording into `recorder`."""

    def __init__(self, client: SupabaseClient, service: SupabaseClient, recorder: Recorder, run_id: str,
                 writers: int, readers: int, write_interval_s: float, read_interval_s: float) -> None:  # fmt: skip
        self.client = client
        self.service = service
        self.recorder = recorder
        self.run_id = run_id
        self.writers = [Writer(k, f"drill-{run_id}-{k}@harness.invalid", uuid.uuid4().hex) for k in range(writers)]
        self.readers = readers
        self.write_interval_s = write_interval_s
        self.read_interval_s = read_interval_s
        self.acked: dict[str, float] = {}
        """client id → drill second of its acknowledgement (so also: when every acknowledged write happened)."""
        self.last_ack_t: float | None = None
        self.write_failures: list[float] = []
        """Drill seconds at which every failed try was sent."""
        self._lock = threading.Lock()
        self.stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- setup (before the drill's clock matters) -----------------------------------------------------------------
    def provision(self) -> None:
        names = self.client.names
        for w in self.writers:
            created = self.service.admin_create_user(w.email, w.password)
            created.raise_for_status()
            session = self.client.sign_in(w.email, w.password)
            session.raise_for_status()
            body = session.json()
            w.user_id, w.token = body["user"]["id"], body["access_token"]
            conv = self.client.insert(names.conversations, {"title": f"drill {self.run_id} {w.index}",
                                                            "created_by": w.user_id}, token=w.token)  # fmt: skip
            conv.raise_for_status()
            w.conversation_id = str(conv.json()[0]["id"])
            member = {"conversation_id": w.conversation_id, "user_id": w.user_id}
            self.client.insert(names.members, member, returning=False, token=w.token).raise_for_status()

    def client_id(self, writer: Writer, seq: int) -> str:
        return f"{self.run_id}:{writer.index}:{seq}"

    # -- load ---------------------------------------------------------------------------------------------------------
    def _timed(self, call: Callable[[], httpx.Response], ok_codes: tuple[int, ...]) -> tuple[bool, float]:
        """(ok, drill second it was sent) of one request, recorded in its second's bucket."""
        started_t = self.recorder.now()
        started = time.perf_counter()
        try:
            ok = call().status_code in ok_codes
        except httpx.HTTPError:
            ok = False
        self.recorder.record(started_t, ok, (time.perf_counter() - started) * 1000)
        return ok, started_t

    def _write_loop(self, w: Writer) -> None:
        names = self.client.names
        seq = 0
        while not self.stop.is_set():
            seq += 1
            row = {"conversation_id": w.conversation_id, "sender_id": w.user_id,
                   "client_msg_id": self.client_id(w, seq), "content": f"drill message {seq}"}  # fmt: skip
            while not self.stop.is_set():
                send = functools.partial(self.client.insert, names.messages, row, returning=False, token=w.token)
                ok, sent_t = self._timed(send, (201, 409))
                if ok:
                    with self._lock:
                        self.acked[str(row["client_msg_id"])] = self.last_ack_t = self.recorder.now()
                    break
                with self._lock:
                    self.write_failures.append(sent_t)
                self.stop.wait(self.write_interval_s)
            self.stop.wait(self.write_interval_s)

    def _read_loop(self, k: int) -> None:
        names = self.client.names
        w = self.writers[k % len(self.writers)]
        read = functools.partial(self.client.select, names.messages, columns="id,client_msg_id", limit=20,
                                 filters=[("conversation_id", f"eq.{w.conversation_id}")], order="created_at.desc",
                                 token=w.token)  # fmt: skip
        while not self.stop.is_set():
            self._timed(read, (200,))
            self.stop.wait(self.read_interval_s)

    def start(self) -> None:
        for w in self.writers:
            self._threads.append(threading.Thread(target=self._write_loop, args=(w,), name=f"writer-{w.index}"))
        for k in range(self.readers):
            self._threads.append(threading.Thread(target=self._read_loop, args=(k,), name=f"reader-{k}"))
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    def halt(self, timeout_s: float = 30.0) -> None:
        self.stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
