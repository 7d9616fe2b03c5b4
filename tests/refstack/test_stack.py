"""The reference stack as processes: ports chosen by the OS, every piece answers, nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websocket

from harness.errors import ConfigError
from harness.model import keys
from harness.refstack.postgres.migrations import default_folder
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _postmaster_pids(data_dir: Path) -> list[int]:
    return [int(f.read_text().split()[0]) for f in data_dir.glob("*/postgres/postmaster.pid")]


def test_pieces_start_on_os_chosen_ports_and_stop_cleanly(tmp_path: Path) -> None:
    config = StackConfig(ports=StackPorts.any(), pieces=("primary", "replica"), data_dir=tmp_path, bcrypt_cost=4)
    with ReferenceStack(config) as stack:
        pids = [p.proc.pid for p in stack.processes.values()]
        postgres = _postmaster_pids(tmp_path)
        assert len(postgres) == 2 and all(_alive(pid) for pid in postgres)  # one PostgreSQL per region
        pids += postgres
        assert set(stack.endpoints.ports) == {"primary", "replica"}
        assert all(port > 0 for port in stack.endpoints.ports.values())
        primary = httpx.get(f"{stack.endpoints.primary_url}/health", timeout=5)
        replica = httpx.get(f"{stack.endpoints.replica_url}/health", timeout=5)
        assert primary.json()["role"] == "primary" and primary.headers["x-origin-region"] == "ap-southeast-1"
        assert replica.json()["role"] == "replica" and replica.headers["x-origin-region"] == "ap-northeast-1"
    assert not any(_alive(pid) for pid in pids)


def test_target_up_stops_every_child_on_sigint(tmp_path: object) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "target",
            "up",
            "--bind",
            "127.0.0.1",
            "--only",
            "primary",
            "--only",
            "replica",
            "--primary-port",
            "0",
            "--replica-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "Ctrl-C stops it." in line or not line:
            break
    urls = [word for line in lines for word in line.split() if word.startswith("http://")]
    assert len(urls) == 2, lines
    assert httpx.get(f"{urls[0]}/health", timeout=5).status_code == 200
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 0
    for url in urls:
        try:
            httpx.get(f"{url}/health", timeout=1)
            raise AssertionError(f"{url} still answers after Ctrl-C")
        except httpx.TransportError:
            pass


def test_target_check_probes_every_piece_of_the_default_stack() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "target", "check"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for probe in ("replica follows primary", "edge routes CN viewers", "primary sign-up, insert, read", "livekit"):
        assert probe in done.stdout
    assert "FAIL" not in done.stdout


def test_edge_moves_everyone_to_japan_when_the_singapore_process_dies() -> None:
    config = StackConfig(ports=StackPorts.any(), pieces=("primary", "replica", "edge"), health_interval_s=0.2)
    with ReferenceStack(config) as stack:
        edge = stack.endpoints.edge_url
        assert httpx.get(f"{edge}/health", timeout=5).headers["x-origin-region"] == "ap-southeast-1"
        stack.processes["primary"].stop()
        deadline = time.monotonic() + 10
        region = None
        while time.monotonic() < deadline:
            response = httpx.get(f"{edge}/health", timeout=5)
            region = response.headers.get("x-origin-region")
            if response.status_code == 200 and region == "ap-northeast-1":
                break
            time.sleep(0.05)
        assert region == "ap-northeast-1", "edge did not fail over to Japan"
        status = httpx.get(f"{edge}/_edge/status", timeout=5).json()
        assert status["origins"]["ap-southeast-1"]["healthy"] is False
        assert status["origins"]["ap-northeast-1"]["healthy"] is True


def test_china_viewers_realtime_websocket_is_served_by_japan_through_the_edge() -> None:
    config = StackConfig(ports=StackPorts.any(), pieces=("primary", "replica", "edge"))
    with ReferenceStack(config) as stack:
        ws_url = stack.endpoints.edge_url.replace("http://", "ws://") + "/realtime/v1/websocket"
        query = f"?apikey={keys.ANON_KEY}&vsn=1.0.0"
        regions = {}
        for country in ("CN", "DE"):
            sock = websocket.create_connection(
                ws_url + query, header=[f"CloudFront-Viewer-Country: {country}"], timeout=5
            )
            try:
                regions[country] = sock.getheaders().get("x-origin-region")
                sock.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"}))
                assert json.loads(sock.recv())["payload"]["status"] == "ok"
            finally:
                sock.close()
        assert regions == {"CN": "ap-northeast-1", "DE": "ap-southeast-1"}


def test_a_failing_user_migration_stops_start_up_with_file_line_and_message(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for shipped in default_folder().glob("*.sql"):
        (folder / shipped.name).write_text(shipped.read_text())
    broken = folder / "20990101000000_typo.sql"
    broken.write_text("-- a typo on line 2\ncreate tabel public.notes (id int);\n")
    config = StackConfig(ports=StackPorts.any(), pieces=("primary",), data_dir=tmp_path / "data", migrations_dir=folder)
    with pytest.raises(ConfigError, match=rf"{broken}:2 failed: 42601 syntax error") as failure:
        ReferenceStack(config).start()
    assert "primary" in str(failure.value)
    assert _postmaster_pids(tmp_path / "data") == [] or not any(_alive(p) for p in _postmaster_pids(tmp_path / "data"))


def test_target_up_refuses_a_missing_migrations_folder(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness", "target", "up", "--migrations", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no such directory" in result.stderr and "Traceback" not in result.stderr
