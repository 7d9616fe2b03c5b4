"""`harness toxiproxy serve`: prints its URL, answers the API, stops cleanly on Ctrl-C (SIGINT)."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx


def test_serve_prints_url_and_stops_on_sigint() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "toxiproxy", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # bounded: the process prints it once ready, or exits
        assert line.startswith("toxiproxy API listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        assert httpx.get(f"{url}/version", timeout=5).json()["version"] == "2.12.0"
        created = httpx.post(
            f"{url}/proxies", json={"name": "cli", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0"}, timeout=5
        )
        assert created.status_code == 201
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
