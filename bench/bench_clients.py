"""Benchmark the gevent protocol clients: REST overhead of `SupabaseSession` vs bare `FastHttpSession`, and the
memory one process needs per idle Realtime connection.

    bench process (gevent) ── SupabaseSession.select / FastHttpSession.get ──► primary region (its own process)
                           └─ N RealtimeClient sockets, each joined to one broadcast channel ──┘

1. REST: `--concurrency` greenlets loop on the same `GET /rest/v1/profiles?select=*&id=eq.<uid>` for `--rest-s`
   seconds, first through bare FastHttpSession (same headers, one Locust-shaped event per call), then through
   SupabaseSession. The figure that matters is requests per CPU-second of *this* process (the generator core),
   since the server shares the machine; goal: ours ≥ 85 % of bare.
2. Realtime: open `--sockets` connections (each joins a broadcast channel), wait for them to go idle, and report
   the RSS growth per socket; goal ≥ 5,000 sockets per process at ≤ 30 KB each.

Bounded by the arguments (defaults finish in about 25 s):

    python bench/bench_clients.py --rest-s 5 --sockets 2000
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable  # noqa: E402

import gevent  # noqa: E402
from gevent.pool import Pool  # noqa: E402
from locust.contrib.fasthttp import FastHttpSession  # noqa: E402

from harness.clients.events import CallbackEvent, ListEvent  # noqa: E402
from harness.clients.supabase.realtime import RealtimeClient  # noqa: E402
from harness.clients.supabase.session import SupabaseSession  # noqa: E402
from harness.model import keys  # noqa: E402
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts  # noqa: E402


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _loop(call: Callable[[], bool], concurrency: int, seconds: float) -> tuple[int, int, float, float]:
    """Run `call` in `concurrency` greenlets for `seconds`: (ok, failed, wall s, process CPU s)."""
    counts = [0, 0]
    deadline = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < deadline:
            counts[0 if call() else 1] += 1

    cpu0, wall0 = time.process_time(), time.monotonic()
    gevent.joinall([gevent.spawn(worker) for _ in range(concurrency)], timeout=seconds + 10)
    return counts[0], counts[1], time.monotonic() - wall0, time.process_time() - cpu0


def bench_rest(url: str, concurrency: int, seconds: float) -> int:
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    setup = SupabaseSession(url, keys.ANON_KEY)
    setup.admin_create_user(keys.SERVICE_ROLE_KEY, email, "bench-password").raise_for_error()
    setup.close()
    fired = [0]
    sink = CallbackEvent(lambda **_: fired.__setitem__(0, fired[0] + 1))  # the same cheap event for both

    ours = SupabaseSession(url, keys.ANON_KEY, request_event=sink)
    ours.sign_in(email, "bench-password").raise_for_error()
    uid = str(ours.user_id)
    path = f"/rest/v1/profiles?select=%2A&id=eq.{uid}"
    headers = {
        "apikey": keys.ANON_KEY,
        "Authorization": f"Bearer {ours.access_token}",
        "Accept-Profile": "public",
        "Content-Type": "application/json",
    }
    bare = FastHttpSession(url, request_event=sink, user=None, max_retries=0)

    def bare_call() -> bool:
        return bare.get(path, headers=headers, name="select profiles").status_code == 200

    def ours_call() -> bool:
        return ours.select("profiles", filters={"id": f"eq.{uid}"}).ok

    results = {}
    for label, call in (("bare FastHttpSession", bare_call), ("SupabaseSession", ours_call)):
        _loop(call, concurrency, min(1.0, seconds))  # warm the pools
        ok, failed, wall_s, cpu_s = _loop(call, concurrency, seconds)
        results[label] = ok / cpu_s if cpu_s else 0.0
        print(
            f"rest {label:21s} ok={ok} failed={failed} req_per_s={ok / wall_s:.0f} "
            f"req_per_cpu_s={results[label]:.0f} cpu_s={cpu_s:.2f} wall_s={wall_s:.2f}"
        )
        if failed:
            print(f"  {failed} calls failed: the figure above is not comparable", file=sys.stderr)
    ratio = results["SupabaseSession"] / results["bare FastHttpSession"] if results["bare FastHttpSession"] else 0
    print(f"rest ours/bare per generator CPU-second = {ratio * 100:.1f} % (goal >= 85 %)")
    ours.close()
    return 0


def bench_realtime(url: str, sockets: int, settle_s: float, max_seconds: float) -> int:
    events = ListEvent()
    clients: list[RealtimeClient] = []
    before_kb = rss_kb()
    started = time.monotonic()

    def open_one(i: int) -> None:
        client = RealtimeClient(url, keys.ANON_KEY, request_event=events, heartbeat_interval_s=25.0)
        if time.monotonic() - started < max_seconds and client.connect():
            client.join(client.channel(f"bench:{i % 100}"))
            clients.append(client)

    pool = Pool(100)
    for i in range(sockets):
        pool.spawn(open_one, i)
    pool.join(timeout=max_seconds + 10)
    connect_s = time.monotonic() - started
    gevent.sleep(settle_s)  # let the first heartbeats and their replies pass, so the sockets are idle
    after_kb = rss_kb()
    joined = sum(1 for c in clients if any(ch.joined for ch in c.channels.values()))
    failures = events.names(failed=True)
    per_socket_kb = (after_kb - before_kb) / max(1, len(clients))
    print(
        f"realtime sockets={len(clients)} joined={joined} failed_events={len(failures)} connect_s={connect_s:.1f} "
        f"rss_before_mb={before_kb / 1024:.1f} rss_after_mb={after_kb / 1024:.1f} "
        f"per_socket_kb={per_socket_kb:.1f} (goal <= 30)"
    )
    for client in clients:
        client.close()
    return 0 if clients else 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rest-s", type=float, default=5.0, help="seconds per REST variant (after 1 s warm-up)")
    parser.add_argument("--concurrency", type=int, default=20, help="greenlets issuing REST calls")
    parser.add_argument("--sockets", type=int, default=2000, help="idle Realtime connections to open")
    parser.add_argument("--settle-s", type=float, default=2.0, help="wait after connecting before measuring RSS")
    parser.add_argument("--max-connect-s", type=float, default=15.0, help="stop opening sockets after this long")
    parser.add_argument("--skip-rest", action="store_true")
    parser.add_argument("--skip-realtime", action="store_true")
    args = parser.parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # sockets here and (inherited) in the server
    if args.sockets + 200 > hard:
        print(f"--sockets {args.sockets} needs more open files than the limit {hard}", file=sys.stderr)
        return 2
    with ReferenceStack(StackConfig(ports=StackPorts.any(), pieces=("primary",))) as stack:
        url = stack.endpoints.primary_url
        status = 0
        if not args.skip_rest:
            status |= bench_rest(url, args.concurrency, args.rest_s)
        if not args.skip_realtime:
            status |= bench_realtime(url, args.sockets, args.settle_s, args.max_connect_s)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
