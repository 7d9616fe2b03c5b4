"""Fixtures shared by every test folder.

slack: a Slack incoming-webhook receiver (a real HTTP server on loopback) that keeps every JSON body it gets.

moto_server: moto's server mode, a real HTTP endpoint for S3, Route53 and SNS on loopback, started as its own
process like any other server. The code under test only sees an endpoint URL and credentials, exactly as with AWS
(boto3 with `endpoint_url=`). Each test gets a clean account (`POST /moto-api/reset`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest


@dataclass(frozen=True)
class MotoServer:
    endpoint_url: str
    access_key: str = "testing-access-key"
    secret_key: str = "testing-secret-key"
    region: str = "ap-southeast-1"

    def env(self) -> dict[str, str]:
        """AWS_* variables as a deployment's CI would set them (fake credentials: moto accepts any)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def _moto_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "false"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {proc.returncode}; see {log.name}")
            try:
                httpx.get(f"{url}/moto-api/", timeout=1.0)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not answer on {url} within 30 s") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def moto_server(_moto_process: str, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """A moto endpoint with a clean account and fake AWS credentials in the environment."""
    httpx.post(f"{_moto_process}/moto-api/reset", timeout=10.0).raise_for_status()
    server = MotoServer(_moto_process)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    return server


@dataclass
class SlackReceiver:
    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    receiver = SlackReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            receiver.bodies.append(json.loads(self.rfile.read(length)))
            body = b"ok" if receiver.status == 200 else b"invalid_payload"
            self.send_response(receiver.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/services/T0HARNESS/B0ALERTS/xyzWebhookSecret42"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
