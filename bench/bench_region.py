"""Benchmark one region server process: authorized history reads and message inserts, driven by `wrk`.

    wrk (bench/wrk/region_read.lua, region_insert.lua) ──HTTP keep-alive──► a region server (PieceProcess)

Reads:   GET /rest/v1/messages?conversation_id=eq.X&order=created_at.desc&limit=50 with a user token (RLS applies).
Inserts: POST /rest/v1/messages, one new message per request (unique client_msg_id), Prefer: return=minimal.
Goal on a 2-core machine: ≥ 4,000 reads/s and ≥ 2,000 inserts/s from one server process.
Bounded: --seconds per phase (default 10) plus a few seconds of setup; the server is stopped on every exit path.

    python bench/bench_region.py                  # about 25 s
    python bench/bench_region.py --seconds 3 --connections 32
    python bench/bench_region.py --via-edge       # also through the edge (CloudFront stand-in): issue 3's ratio
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

from harness.clients.supabase import api
from harness.clients.supabase.sync import SupabaseClient
from harness.model import keys
from harness.procs.piece import PieceProcess
from harness.refstack.stack import EDGE_FACTORY, REGION_FACTORY

WRK_DIR = Path(__file__).resolve().parent / "wrk"
SEED_MESSAGES = 200
STARTUP_TIMEOUT_S = 20.0


def start_piece(piece: str, factory: str, options: dict[str, Any], log_dir: Path) -> tuple[PieceProcess, str]:
    """One piece in its own process, exactly as the reference stack starts it; (process, base URL)."""
    process = PieceProcess(piece, factory, log_dir / f"{piece}.log", options=options)
    return process, f"http://127.0.0.1:{process.port}"


def seed(url: str) -> dict[str, str]:
    """One user, one conversation they belong to, SEED_MESSAGES messages in it; returns the wrk environment."""
    with SupabaseClient(url, keys.SERVICE_ROLE_KEY, timeout_s=10) as service:
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        created = service.admin_create_user(email, "bench-pass")
        created.raise_for_status()
        user_id = created.json()["id"]
        anon = service.with_key(keys.ANON_KEY)
        session = anon.sign_in(email, "bench-pass")
        session.raise_for_status()
        token = session.json()["access_token"]
        conv = anon.insert("conversations", {"created_by": user_id}, token=token).json()[0]["id"]
        member = {"conversation_id": conv, "user_id": user_id, "role": "owner"}
        anon.insert("conversation_members", member, returning=False, token=token).raise_for_status()
        rows = [
            {"conversation_id": conv, "sender_id": user_id, "client_msg_id": f"seed-{i}", "content": f"message {i}"}
            for i in range(SEED_MESSAGES)
        ]
        anon.insert("messages", rows, returning=False, token=token).raise_for_status()
    history = api.select_params("*", {"conversation_id": api.eq(conv)}, order="created_at.desc", limit=50)
    return {
        "BENCH_APIKEY": keys.ANON_KEY,
        "BENCH_TOKEN": token,
        "BENCH_CONVERSATION": conv,
        "BENCH_SENDER": user_id,
        "BENCH_NONCE": uuid.uuid4().hex[:8],
        "BENCH_PATH": api.rest("messages", history),
    }


def run_wrk(url: str, script: str, env: dict[str, str], seconds: int, connections: int, threads: int) -> str:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(WRK_DIR / script),
        url,
    ]
    done = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    errors = done.stderr.strip().splitlines()
    if errors:
        print(f"  {len(errors)} unexpected responses, first: {errors[0][:200]}")
    return done.stdout


def summarize(name: str, output: str) -> float:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    percentiles = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.M))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    print(
        f"{name:8s} {float(rate.group(1)) if rate else 0:10.0f} req/s   "
        f"p50 {percentiles.get('50', '?'):>8s}  p90 {percentiles.get('90', '?'):>8s}  "
        f"p99 {percentiles.get('99', '?'):>8s}   non-2xx {non_2xx.group(1) if non_2xx else 0}"
        + (f"   socket errors: {socket_errors.group(1)}" if socket_errors else "")
    )
    return float(rate.group(1)) if rate else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each phase (≤ 12 keeps the run ≤ 30 s)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--via-edge", action="store_true", help="repeat both phases through the edge and compare")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="bench-region-") as data_dir:
        proc, url = start_piece("region", REGION_FACTORY, {"data_dir": data_dir}, Path(data_dir))
        try:
            env = seed(url)
            print(f"region server {url}, {args.connections} connections, {args.threads} threads, {args.seconds} s each")
            phases = (("reads", "region_read.lua"), ("inserts", "region_insert.lua"))
            direct = {}
            for name, script in phases:
                direct[name] = summarize(name, run_wrk(url, script, env, args.seconds, args.connections, args.threads))
            if args.via_edge:
                origins = {"ap-southeast-1": url, "ap-northeast-1": url}
                edge, edge_url = start_piece("edge", EDGE_FACTORY, {"origins": origins}, Path(data_dir))
                try:
                    print(f"through the edge {edge_url}")
                    for name, script in phases:
                        env["BENCH_NONCE"] = uuid.uuid4().hex[:8]
                        output = run_wrk(edge_url, script, env, args.seconds, args.connections, args.threads)
                        rate = summarize(f"edge {name}", output)
                        print(f"  edge keeps {rate / direct[name]:.0%} of direct {name} throughput (goal >= 70 %)")
                finally:
                    edge.stop()
        finally:
            proc.stop()


if __name__ == "__main__":
    main()
