"""Benchmark the LiveKit stand-in's `/rtc` path: joins per second and ping round trip, N sequential clients.

Each client: open `/rtc` with a fresh token, read the JoinResponse, send `--pings` ping_req and time each pong_resp,
send leave. The stand-in runs in its own process (so client and server do not share a GIL) on a loopback port.
Bounded by `--clients` and by `--max-seconds` (default 30), whichever comes first.

    python bench/bench_livekit.py --clients 200 --pings 5
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from multiprocessing.connection import Connection

import websocket
from livekit import api
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from harness.model import keys
from harness.procs.serving import serve_forever
from harness.refstack.livekit.server import build_app


def _serve(conn: Connection) -> None:
    serve_forever(build_app, "127.0.0.1", 0, on_ready=conn.send)


def _token(identity: str) -> str:
    grant = api.VideoGrants(room_join=True, room="bench")
    access = api.AccessToken(keys.LIVEKIT_API_KEY, keys.LIVEKIT_API_SECRET).with_identity(identity)
    return access.with_grants(grant).to_jwt()


def _recv(ws: websocket.WebSocket, kind: str) -> proto_rtc.SignalResponse:
    for _ in range(20):
        frame = ws.recv()
        response = proto_rtc.SignalResponse.FromString(frame if isinstance(frame, bytes) else frame.encode())
        if response.WhichOneof("message") == kind:
            return response
    raise RuntimeError(f"no {kind} within 20 frames")


def run(url: str, clients: int, pings: int, max_seconds: float) -> int:
    join_ms: list[float] = []
    rtt_ms: list[float] = []
    tokens = [_token(f"bench-{i}") for i in range(clients)]
    started = time.perf_counter()
    for token in tokens:
        if time.perf_counter() - started > max_seconds:
            break
        t0 = time.perf_counter()
        ws = websocket.create_connection(url, header=[f"Authorization: Bearer {token}"], timeout=5)
        try:
            _recv(ws, "join")
            join_ms.append((time.perf_counter() - t0) * 1000)
            for _ in range(pings):
                t1 = time.perf_counter()
                ping = proto_rtc.Ping(timestamp=int(time.time() * 1000))
                ws.send_binary(proto_rtc.SignalRequest(ping_req=ping).SerializeToString())
                _recv(ws, "pong_resp")
                rtt_ms.append((time.perf_counter() - t1) * 1000)
            leave = proto_rtc.LeaveRequest(reason=proto_models.DisconnectReason.CLIENT_INITIATED)
            ws.send_binary(proto_rtc.SignalRequest(leave=leave).SerializeToString())
        finally:
            ws.close()
    elapsed_s = time.perf_counter() - started
    if not join_ms:
        print("no client completed a join", file=sys.stderr)
        return 2
    print(f"clients={len(join_ms)} elapsed_s={elapsed_s:.2f} joins_per_s={len(join_ms) / elapsed_s:.1f}")
    print(f"join_ms p50={statistics.median(join_ms):.2f} p95={_p95(join_ms):.2f}")
    if rtt_ms:
        print(f"ping_rtt_ms p50={statistics.median(rtt_ms):.3f} p95={_p95(rtt_ms):.3f} samples={len(rtt_ms)}")
    return 0


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200, help="sequential clients (default 200)")
    parser.add_argument("--pings", type=int, default=5, help="ping_req round trips per client (default 5)")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="stop starting clients after this long")
    args = parser.parse_args()
    if not 1 <= args.clients <= 100_000 or not 0 <= args.pings <= 1000 or not 0 < args.max_seconds <= 30:
        parser.error("--clients 1..100000, --pings 0..1000, --max-seconds 0..30")

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(child,), daemon=True)
    server.start()
    try:
        if not parent.poll(15):
            print("the stand-in did not start within 15 s", file=sys.stderr)
            return 2
        port = parent.recv()
        return run(f"ws://127.0.0.1:{port}/rtc", args.clients, args.pings, args.max_seconds)
    finally:
        server.terminate()
        server.join(10)


if __name__ == "__main__":
    sys.exit(main())
