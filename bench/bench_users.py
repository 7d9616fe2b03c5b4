"""Benchmark the user-class layer: requests per generator CPU-second of a MessagingUser-style REST loop through
our clients (AccountUser + SupabaseSession, the run state, events into Locust's stats) vs a bare FastHttpUser
making the same calls with the same headers.

    bench process (gevent, one core) ── Locust LocalRunner ── N users, no wait ──► primary region (own process)
        ours:  sign in once, then loop: REST select messages (50 rows) ×2, REST insert messages ×1
        bare:  FastHttpUser, same token, same three calls by path

The figure is requests per CPU-second of *this* process (the server shares the machine, so wall-clock rps says
less). Realtime and delivery are left out: the point is what our user and client layers cost per request.
Bounded (defaults finish in about 20 s):

    python bench/bench_users.py --users 20 --seconds 6
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from locust import FastHttpUser, constant, task  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.event import Events  # noqa: E402

from harness.model import keys  # noqa: E402
from harness.model.credentials import Credentials  # noqa: E402
from harness.model.delivery import Envelope  # noqa: E402
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts  # noqa: E402
from harness.scenarios.base import AccountUser  # noqa: E402
from harness.scenarios.provisioning import provision_users, remove_users  # noqa: E402
from harness.scenarios.runstate import install  # noqa: E402
from harness.scenarios.settings import ScenarioSettings  # noqa: E402

_seq = itertools.count(1)


class OursUser(AccountUser):
    wait_time = constant(0)

    @task(2)
    def history(self) -> None:
        if self.signed_in():
            conversation = self.conversation_ids()[0]
            assert self.session is not None
            self.session.select(
                "messages", filters={"conversation_id": f"eq.{conversation}"}, order="created_at.desc", limit=50
            )

    @task(1)
    def send(self) -> None:
        if self.signed_in():
            assert self.session is not None
            envelope = Envelope("bench", self.user_id, next(_seq), time.time(), self.conversation_ids()[0])
            self.session.insert("messages", envelope.message_row(), returning=False, duplicate_ok=True)


class BareUser(FastHttpUser):
    wait_time = constant(0)
    credentials: Credentials
    numbers = itertools.count()

    def on_start(self) -> None:
        user = self.credentials.users[next(self.numbers) % len(self.credentials.users)]
        self.user_id = user.id
        self.conversation = self.credentials.conversations_of(user.id)[0].id
        reply = self.client.post(
            "/auth/v1/token?grant_type=password",
            json={"email": user.email, "password": user.password},
            headers={"apikey": keys.ANON_KEY},
        )
        token = reply.json()["access_token"]
        self.headers = {
            "apikey": keys.ANON_KEY,
            "Authorization": f"Bearer {token}",
            "Accept-Profile": "public",
            "Content-Profile": "public",
            "Content-Type": "application/json",
        }

    @task(2)
    def history(self) -> None:
        path = f"/rest/v1/messages?select=%2A&conversation_id=eq.{self.conversation}&order=created_at.desc&limit=50"
        self.client.get(path, headers=self.headers, name="REST select messages")

    @task(1)
    def send(self) -> None:
        envelope = Envelope("bench", self.user_id, next(_seq), time.time(), self.conversation)
        self.client.post(
            "/rest/v1/messages",
            data=json.dumps(envelope.message_row()),
            headers={**self.headers, "Prefer": "return=minimal"},
            name="REST insert messages",
        )


def measure(user_class: type, host: str, users: int, seconds: float, settings: ScenarioSettings) -> dict[str, Any]:
    environment = Environment(user_classes=[user_class], events=Events(), host=host)
    runner = environment.create_local_runner()
    install(environment, settings)
    counts = {"ok": 0, "failed": 0}
    counting = [False]

    def on_request(exception: BaseException | None = None, **_: Any) -> None:
        if counting[0]:
            counts["failed" if exception else "ok"] += 1

    environment.events.request.add_listener(on_request)
    runner.start(users, spawn_rate=users)
    gevent.sleep(1.5)  # sign-ins and connection set-up are not what is measured
    counting[0] = True
    cpu0, wall0 = time.process_time(), time.monotonic()
    gevent.sleep(seconds)
    cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
    counting[0] = False
    runner.quit()
    total = counts["ok"] + counts["failed"]
    return {
        "class": user_class.__name__,
        "requests": total,
        "failed": counts["failed"],
        "rps": round(total / wall_s),
        "cpu_s": round(cpu_s, 2),
        "req_per_cpu_s": round(total / cpu_s) if cpu_s else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20, help="concurrent users (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per variant (max 10)")
    args = parser.parse_args()
    seconds = min(args.seconds, 10.0)
    with ReferenceStack(StackConfig(ports=StackPorts.any(), pieces=("primary",))) as stack:
        url = stack.endpoints.primary_url
        credentials, path = provision_users(url, max(args.users, 4), 4)
        try:
            BareUser.credentials = credentials
            settings = ScenarioSettings(credentials_path=path)
            results = [measure(cls, url, args.users, seconds, settings) for cls in (BareUser, OursUser)]
        finally:
            remove_users(url, path, len(credentials.users))
    bare, ours = results
    for row in results:
        print(json.dumps(row))
    if bare["req_per_cpu_s"] and ours["req_per_cpu_s"]:
        print(f"ours / bare, requests per generator CPU-second: {ours['req_per_cpu_s'] / bare['req_per_cpu_s']:.2f}")


if __name__ == "__main__":
    main()
