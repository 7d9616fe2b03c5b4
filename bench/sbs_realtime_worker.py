"""Hold N joined Realtime sockets in this one gevent process (as one Locust worker would) and report the memory.

    this process ── N × harness RealtimeClient (websocket-client + one reader greenlet each) ──► a region server
        open at most --parallel at a time, each joins one broadcast channel; wait --settle-s for the first
        heartbeats; RSS growth / sockets held = memory per socket; then close them all

Limits raised here, as a worker needs them: RLIMIT_NOFILE soft → hard (one descriptor per socket). Bounded: stops
opening after --max-connect-s and everything is closed before exit. Prints one JSON line.

    python bench/sbs_realtime_worker.py --url http://127.0.0.1:PORT --sockets 10000
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from gevent.pool import Pool  # noqa: E402

from harness.clients.events import CallbackEvent  # noqa: E402
from harness.clients.supabase.realtime import RealtimeClient  # noqa: E402
from harness.model import keys  # noqa: E402


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raise_nofile(wanted: int) -> tuple[int, int]:
    """Soft limit up to the hard one when `wanted` descriptors need it; (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        soft = hard if hard == resource.RLIM_INFINITY else min(hard, max(wanted, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft, hard


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--parallel", type=int, default=200, help="handshakes in flight at once")
    parser.add_argument("--settle-s", type=float, default=3.0)
    parser.add_argument("--max-connect-s", type=float, default=90.0)
    args = parser.parse_args(argv)
    soft, hard = raise_nofile(args.sockets + 256)
    failures = [0]
    sink = CallbackEvent(lambda exception=None, **_: failures.__setitem__(0, failures[0] + (exception is not None)))
    # One socket first, then measure: imports, the hub and websocket-client's first-use caches are not per socket.
    warm = RealtimeClient(args.url, keys.ANON_KEY, request_event=sink)
    warm.connect() and warm.join(warm.channel("bench:warm"))
    gc.collect()
    before_kb = rss_kb()
    clients: list[RealtimeClient] = []
    started = time.monotonic()

    def open_one(i: int) -> None:
        if time.monotonic() - started > args.max_connect_s:
            return
        client = RealtimeClient(args.url, keys.ANON_KEY, request_event=sink)
        if client.connect():
            clients.append(client)
            client.join(client.channel(f"bench:{i % 100}"))

    pool = Pool(args.parallel)
    for i in range(args.sockets):
        pool.spawn(open_one, i)
    pool.join(timeout=args.max_connect_s + 30)
    connect_s = time.monotonic() - started
    gevent.sleep(args.settle_s)  # the first heartbeats and their replies pass: the sockets are idle
    gc.collect()
    after_kb = rss_kb()
    joined = sum(1 for c in clients if c.connected and any(ch.joined for ch in c.channels.values()))
    held = sum(1 for c in clients if c.connected)
    result = {
        "asked": args.sockets,
        "held": held,
        "joined": joined,
        "failed_events": failures[0],
        "connect_s": round(connect_s, 1),
        "rss_before_mb": round(before_kb / 1024, 1),
        "rss_after_mb": round(after_kb / 1024, 1),
        "kb_per_socket": round((after_kb - before_kb) / max(1, len(clients)), 2),
        "nofile": [soft, hard],
    }
    closer = Pool(500)
    for client in [*clients, warm]:
        closer.spawn(client.close)
    closer.join(timeout=60)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
