"""Benchmark the edge: requests/s and added latency through the edge versus straight to the origin.

    viewer (this process: http.client, websocket-client, wrk) ──► edge process ──► origin process
                                                              └────────────────► origin process (direct)

Latency at low load: one keep-alive connection, sequential requests (GET, 1 KB POST, websocket echo), p50/p99.
Throughput: `wrk` with --connections keep-alive connections (GET and 1 KB POST); skipped if wrk is missing.
Goal (issue 3): the edge keeps ≥ 70 % of direct throughput and adds ≤ 1 ms at p50 at low load.
The origin is a minimal aiohttp app for now; the region server can replace it later. Bounded by --max-seconds.

    python bench/bench_edge.py            # about 25 s
    python bench/bench_edge.py --phase-seconds 1 --connections 16
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

import websocket
from aiohttp import web

from harness.procs.serving import serve_forever
from harness.refstack.edge.server import build_app

REGION = "ap-southeast-1"
POST_BODY = b'{"conversation_id":42,"body":"' + b"x" * 990 + b'"}'


def origin_app() -> web.Application:
    async def tag(_request: web.Request, response: web.StreamResponse) -> None:
        response.headers["x-origin-region"] = REGION

    async def ping(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read(), content_type="application/json")

    async def ws_echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is web.WSMsgType.TEXT:
                await ws.send_str(msg.data)
        return ws

    app = web.Application()
    app.on_response_prepare.append(tag)
    app.router.add_get("/health", ping)
    app.router.add_get("/rest/v1/ping", ping)
    app.router.add_post("/rest/v1/echo", echo)
    app.router.add_get("/realtime/v1/websocket", ws_echo)
    return app


def _serve_origin(conn: Connection) -> None:
    serve_forever(origin_app, "127.0.0.1", 0, on_ready=conn.send)


def _serve_edge(conn: Connection, origin_url: str) -> None:
    origins = {"ap-southeast-1": origin_url, "ap-northeast-1": origin_url}
    serve_forever(lambda: build_app(origins=origins), "127.0.0.1", 0, on_ready=conn.send)


def _start(target: Callable[..., None], *args: object) -> tuple[multiprocessing.Process, int]:
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=target, args=(child, *args), daemon=True)
    proc.start()
    if not parent.poll(30):
        raise RuntimeError(f"{target.__name__} did not report a port within 30 s")
    return proc, int(parent.recv())


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    if len(samples_ms) < 2:
        return {"n": len(samples_ms), "p50_ms": float("nan"), "p99_ms": float("nan")}
    q = statistics.quantiles(samples_ms, n=100)
    return {"n": len(samples_ms), "p50_ms": round(statistics.median(samples_ms), 3), "p99_ms": round(q[98], 3)}


def latency_http(port: int, method: str, seconds: float) -> dict[str, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    path, body = ("/rest/v1/ping", None) if method == "GET" else ("/rest/v1/echo", POST_BODY)
    headers = {"Content-Type": "application/json", "CloudFront-Viewer-Country": "SG"}
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    for i in range(1_000_000):
        t0 = time.perf_counter()
        if t0 > deadline:
            break
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{method} {path} on :{port} answered {resp.status}")
        if i >= 50:  # warm-up: connection pools, caches
            samples.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return _percentiles(samples)


def latency_ws(port: int, seconds: float) -> dict[str, float]:
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/realtime/v1/websocket", timeout=5)
    message = json.dumps({"topic": "realtime:bench", "event": "broadcast", "payload": {"n": 0}, "ref": "1"})
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    for i in range(1_000_000):
        t0 = time.perf_counter()
        if t0 > deadline:
            break
        ws.send(message)
        ws.recv()
        if i >= 50:
            samples.append((time.perf_counter() - t0) * 1000)
    ws.close()
    return _percentiles(samples)


def throughput_wrk(port: int, method: str, seconds: float, connections: int) -> float | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        body = POST_BODY.decode()
        script.write(f'wrk.method = "{method}"\nwrk.headers["Content-Type"] = "application/json"\n')
        if method == "POST":
            script.write(f"wrk.body = [[{body}]]\n")
    path = "/rest/v1/ping" if method == "GET" else "/rest/v1/echo"
    try:
        done = subprocess.run(
            [
                wrk,
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "-s",
                script.name,
                f"http://127.0.0.1:{port}{path}",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 15,
            check=False,
        )
    finally:
        os.unlink(script.name)
    match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if done.returncode != 0 or match is None or "Non-2xx" in done.stdout:
        raise RuntimeError(f"wrk failed on :{port}{path}: {done.stdout}{done.stderr}")
    return float(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase-seconds", type=float, default=1.5, help="length of each latency phase (s)")
    parser.add_argument("--throughput-seconds", type=float, default=2.0, help="length of each wrk run (s)")
    parser.add_argument("--connections", type=int, default=32, help="wrk keep-alive connections")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="stop starting new phases after this")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    origin, origin_port = _start(_serve_origin)
    edge, edge_port = _start(_serve_edge, f"http://127.0.0.1:{origin_port}")
    targets = {"direct": origin_port, "edge": edge_port}
    results: dict[str, dict[str, object]] = {"direct": {}, "edge": {}}

    def budget_left() -> bool:
        return time.perf_counter() - started < args.max_seconds - args.throughput_seconds - 3

    try:
        for name, port in targets.items():
            for method in ("GET", "POST"):
                if budget_left():
                    results[name][f"{method} latency"] = latency_http(port, method, args.phase_seconds)
            if budget_left():
                results[name]["WS round trip"] = latency_ws(port, args.phase_seconds)
        for name, port in targets.items():
            for method in ("GET", "POST"):
                if budget_left():
                    results[name][f"{method} req/s"] = throughput_wrk(
                        port, method, args.throughput_seconds, args.connections
                    )
    finally:
        for proc in (edge, origin):
            proc.terminate()
            proc.join(5)

    print(f"{'metric':<16}{'direct':>24}{'edge':>24}{'edge vs direct':>20}")
    goals: list[str] = []
    for key in results["direct"]:
        direct, via_edge = results["direct"].get(key), results["edge"].get(key)
        if isinstance(direct, dict) and isinstance(via_edge, dict):
            added = via_edge["p50_ms"] - direct["p50_ms"]
            fmt = "p50 {p50_ms:.3f} p99 {p99_ms:.3f} ms"
            print(f"{key:<16}{fmt.format(**direct):>24}{fmt.format(**via_edge):>24}{f'+{added:.3f} ms p50':>20}")
            goals.append(f"{key}: adds {added:.3f} ms at p50 (goal ≤ 1 ms): {'met' if added <= 1.0 else 'MISSED'}")
        elif isinstance(direct, float) and isinstance(via_edge, float):
            ratio = via_edge / direct
            print(f"{key:<16}{direct:>24.0f}{via_edge:>24.0f}{f'{ratio:.0%}':>20}")
            goals.append(f"{key}: keeps {ratio:.0%} of direct (goal ≥ 70 %): {'met' if ratio >= 0.7 else 'MISSED'}")
        elif direct is None:
            print(f"{key:<16}{'(wrk not installed)':>24}")
    for line in goals:
        print(line)
    print(f"cpus={os.cpu_count()} wrk_connections={args.connections} elapsed_s={time.perf_counter() - started:.1f}")
    print(json.dumps({"bench": "edge", **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
