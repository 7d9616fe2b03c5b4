"""One Locust variant of bench/run's client-layer table, in its own process: N users with no wait time making the
same authorised REST read, counted over a measured span after a warm-up. Prints one JSON line.

    this process (gevent, one core) ── Locust LocalRunner ── N users ──► GET <path> (a region, or the edge)
        bare:  FastHttpUser, self.client.get(path, headers=…)            (Locust's own client)
        ours:  SupabaseSession.select(…) in a Locust User                (the harness client layer, events → stats)

Requests and failures come from Locust's own stats (both variants fire one request event per call); CPU is this
process's `time.process_time()` over the measured span, so requests per generator CPU-second compares the layers.

    python bench/sbs_locust_rest.py --variant ours --host URL --token JWT --conversation UUID --users 32 --seconds 5
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from locust import FastHttpUser, User, constant, task  # noqa: E402
from locust.env import Environment  # noqa: E402

from harness.clients.supabase import api  # noqa: E402
from harness.clients.supabase.session import SupabaseSession  # noqa: E402
from harness.model import keys  # noqa: E402

HISTORY_ROWS = 50


def history_path(conversation: str) -> str:
    """The read every variant makes (wrk's too): the 50 newest messages of a conversation, row-level security on."""
    params = api.select_params("*", {"conversation_id": api.eq(conversation)}, order="created_at.desc", limit=50)
    return api.rest("messages", params)


class Setup:
    host = ""
    token = ""
    conversation = ""


class BareUser(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.path = history_path(Setup.conversation)
        self.headers = {"apikey": keys.ANON_KEY, "Authorization": f"Bearer {Setup.token}"}

    @task
    def read(self) -> None:
        self.client.get(self.path, headers=self.headers, name="REST select messages")


class OursUser(User):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.session = SupabaseSession(self.host or Setup.host, keys.ANON_KEY, environment=self.environment)
        self.session.set_session(Setup.token)
        self.filters = {"conversation_id": api.eq(Setup.conversation)}

    def on_stop(self) -> None:
        self.session.close()

    @task
    def read(self) -> None:
        self.session.select("messages", filters=self.filters, order="created_at.desc", limit=HISTORY_ROWS)


def measure(user_class: type[User], host: str, users: int, warmup_s: float, seconds: float) -> dict[str, Any]:
    environment = Environment(user_classes=[user_class], host=host)
    runner = environment.create_local_runner()
    runner.start(users, spawn_rate=users)
    gevent.sleep(warmup_s)  # connections opened, pools warm: not what is measured
    total = environment.stats.total
    n0, f0 = total.num_requests, total.num_failures
    cpu0, wall0 = time.process_time(), time.monotonic()
    gevent.sleep(seconds)
    cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
    n, failed = total.num_requests - n0, total.num_failures - f0
    runner.quit()
    return {
        "variant": user_class.__name__,
        "requests": n,
        "failed": failed,
        "wall_s": round(wall_s, 3),
        "cpu_s": round(cpu_s, 3),
        "rps": n / wall_s if wall_s else 0.0,
        "req_per_cpu_s": n / cpu_s if cpu_s else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=("bare", "ours"), required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--token", required=True, help="a user's access token (a local demo stack's: not a secret)")
    parser.add_argument("--conversation", required=True)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--warmup-s", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    Setup.host, Setup.token, Setup.conversation = args.host, args.token, args.conversation
    user_class = BareUser if args.variant == "bare" else OursUser
    seconds = min(args.seconds, 60.0)
    print(json.dumps(measure(user_class, args.host, args.users, args.warmup_s, seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
