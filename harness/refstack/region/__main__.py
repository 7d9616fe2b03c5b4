"""Run one region server in the foreground: `python -m harness.refstack.region --port 54321 --data-dir DIR`.

Prints `listening on http://HOST:PORT` once bound (port 0 picks a free one), for scripts that start it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.refstack.region.app import build_app
from harness.refstack.region.config import REGIONS, RegionConfig
from harness.refstack.serving import serve_forever


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.refstack.region", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=54321)
    parser.add_argument("--data-dir", type=Path, default=None, help="SQLite and objects; omit to keep all in memory")
    parser.add_argument("--region", choices=REGIONS, default=REGIONS[0])
    parser.add_argument("--role", choices=("primary", "replica"), default="primary")
    args = parser.parse_args(argv)
    config = RegionConfig(region=args.region, role=args.role, data_dir=args.data_dir)

    def ready(port: int) -> None:
        print(f"listening on http://{args.host}:{port}", flush=True)

    serve_forever(lambda: build_app(config), args.host, args.port, ready)


if __name__ == "__main__":
    main()
