"""Benchmark: what the embedded Toxiproxy adds with no toxics, beside the same traffic sent direct.

Starts `harness toxiproxy serve` (uvloop, its own process) and a uvloop echo upstream (its own process), then
measures on loopback:
  1. round-trip latency at low load (one connection, back-to-back 64-byte echoes),
  2. round-trip latency at ~500 req/s (10 connections × 50 paced req/s),
  3. throughput in MB/s (one connection, 1 MiB writes echoed back).
Bounded: about 15 s in all. Run: `python bench/bench_toxiproxy.py`.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

import httpx

LOW_LOAD_ROUND_TRIPS = 2000
PACED_CONNECTIONS = 10
PACED_RATE_PER_CONNECTION = 50  # × 10 connections = 500 req/s
PACED_SECONDS = 4.0
THROUGHPUT_BYTES = 128 * 1024 * 1024
THROUGHPUT_MAX_SECONDS = 4.0
PAYLOAD = b"x" * 64

ECHO_SERVER = """
import asyncio, sys, uvloop
class Echo(asyncio.Protocol):
    def connection_made(self, t): self.t = t
    def data_received(self, d): self.t.write(d)
async def main():
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
uvloop.run(main())
"""


def start(cmd: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def round_trip_us(sock: socket.socket) -> float:
    start = time.perf_counter()
    sock.sendall(PAYLOAD)
    got = 0
    while got < len(PAYLOAD):
        got += len(sock.recv(4096))
    return (time.perf_counter() - start) * 1e6


def low_load(port: int) -> list[float]:
    with connect(port) as sock:
        for _ in range(100):
            round_trip_us(sock)
        return [round_trip_us(sock) for _ in range(LOW_LOAD_ROUND_TRIPS)]


def paced(port: int) -> tuple[list[float], float]:
    samples: list[float] = []
    lock = threading.Lock()
    interval = 1 / PACED_RATE_PER_CONNECTION

    def worker(offset: float) -> None:
        local = []
        with connect(port) as sock:
            start = time.perf_counter() + offset
            for i in range(int(PACED_SECONDS * PACED_RATE_PER_CONNECTION)):
                delay = start + i * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                local.append(round_trip_us(sock))
        with lock:
            samples.extend(local)

    threads = [
        threading.Thread(target=worker, args=(i * interval / PACED_CONNECTIONS,)) for i in range(PACED_CONNECTIONS)
    ]
    begin = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(PACED_SECONDS + 10)
    return samples, len(samples) / (time.perf_counter() - begin)


def throughput_mb_s(port: int) -> float:
    block = os.urandom(1024 * 1024)
    received = 0
    with connect(port) as sock:

        def reader() -> None:
            nonlocal received
            while received < sent_target[0]:
                data = sock.recv(1 << 20)
                if not data:
                    return
                received += len(data)

        sent_target = [THROUGHPUT_BYTES]
        thread = threading.Thread(target=reader)
        start = time.perf_counter()
        thread.start()
        sent = 0
        while sent < THROUGHPUT_BYTES and time.perf_counter() - start < THROUGHPUT_MAX_SECONDS:
            sock.sendall(block)
            sent += len(block)
        sent_target[0] = sent
        thread.join(10)
        elapsed = time.perf_counter() - start
    return received / elapsed / 1e6


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> int:
    echo, echo_port = start([sys.executable, "-c", ECHO_SERVER])
    proxy, line = start([sys.executable, "-m", "harness", "toxiproxy", "serve", "--port", "0"])
    try:
        api = line.split()[-1]
        resp = httpx.post(f"{api}/proxies", json={"name": "bench", "upstream": f"127.0.0.1:{echo_port}"}, timeout=5)
        proxy_port = int(resp.json()["listen"].rsplit(":", 1)[1])
        direct_port = int(echo_port)

        rows = []
        low_d, low_p = low_load(direct_port), low_load(proxy_port)
        rows.append(("low load p50 (µs)", pct(low_d, 50), pct(low_p, 50)))
        rows.append(("low load p99 (µs)", pct(low_d, 99), pct(low_p, 99)))
        (paced_d, rate_d), (paced_p, rate_p) = paced(direct_port), paced(proxy_port)
        rows.append((f"~{rate_p:.0f} req/s p50 (µs)", pct(paced_d, 50), pct(paced_p, 50)))
        rows.append((f"~{rate_p:.0f} req/s p99 (µs)", pct(paced_d, 99), pct(paced_p, 99)))
        rows.append(("echo throughput (MB/s)", throughput_mb_s(direct_port), throughput_mb_s(proxy_port)))

        print(f"{'measure':<26}{'direct':>12}{'via proxy':>12}{'added':>12}")
        for name, direct, via in rows:
            print(f"{name:<26}{direct:>12.1f}{via:>12.1f}{via - direct:>12.1f}")
        print(f"(paced direct rate {rate_d:.0f} req/s; no toxics; loopback; {os.cpu_count()} CPUs)")
    finally:
        for proc, sig in ((proxy, signal.SIGINT), (echo, signal.SIGTERM)):  # the proxy stops cleanly on Ctrl-C
            proc.send_signal(sig)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
