"""`harness target up`: run the embedded reference stack (or one region server) in the foreground."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

from harness.errors import ConfigError, TargetUnreachable
from harness.model import keys
from harness.procs.child import describe_exit
from harness.refstack.postgres.migrations import check_folder
from harness.refstack.region.config import REGIONS
from harness.refstack.stack import PIECES, REGION_OF, ReferenceStack, StackConfig, StackPorts

MIGRATIONS_HELP = (
    "a Supabase migrations folder (<version>_<name>.sql files) applied in filename order at start, as `supabase db "
    "push` would, so smoke and load runs test your own tables and policies (default: the app's own, "
    "supabase/migrations/); a failing file stops start-up with its line and PostgreSQL's message"
)
SUPERVISE_INTERVAL_S = 0.5
"""How often `target up` checks that every piece still runs."""
LOG_TAIL_LINES = 5
"""Lines of a dead piece's log quoted in the message."""
REGION_PIECES = tuple(REGION_OF)
"""primary, replica: the pieces an edge in another container reaches by URL."""
_LOCAL_KEYS_NOTE = "local demo keys: they protect nothing; never use them for a real project"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    target = subparsers.add_parser("target", help="run the embedded reference stack (the default target)")
    target_sub = target.add_subparsers(title="target commands", metavar="ACTION")
    target.set_defaults(func=lambda _args: _usage(target))
    up = target_sub.add_parser(
        "up",
        help="start the reference stack in the foreground until Ctrl-C",
        description=(
            "Start the embedded reference stack on loopback: edge (CloudFront stand-in), Singapore primary, Japan "
            "replica and the LiveKit stand-in, each its own process. Prints every endpoint and the local demo keys; "
            "Ctrl-C or SIGTERM stops all of it. With --region, run just one region server (as a primary)."
        ),
    )
    up.add_argument("--region", choices=REGIONS, help="run only this region's server, as a primary")
    up.add_argument(
        "--only",
        action="append",
        choices=PIECES,
        metavar="PIECE",
        help=f"start only this piece of the stack (repeatable; one of {', '.join(PIECES)})",
    )
    up.add_argument("--bind", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    up.add_argument("--port", type=int, help="port for --region (default: 54321 Singapore, 54322 Japan; 0 = any)")
    defaults = StackPorts()
    for piece in PIECES:
        up.add_argument(
            f"--{piece}-port",
            type=int,
            default=getattr(defaults, piece),
            help=f"port of the {piece} (default: %(default)s; 0 = any)",
        )
    up.add_argument(
        "--data-dir",
        type=Path,
        help="keep each region's PostgreSQL cluster here, reused on the next start (default: a temporary directory "
        "removed on exit)",
    )
    up.add_argument("--migrations", type=Path, metavar="DIR", help=MIGRATIONS_HELP)
    # Pieces in other containers (docker-compose.yml, docs/compose.md): the URLs by which they are reached.
    up.add_argument(
        "--livekit-url",
        metavar="URL",
        help="the LiveKit URL the regions hand out with meeting tokens, when clients reach LiveKit at another "
        "address than this stack's own (e.g. ws://livekit:7880 in docker-compose.yml)",
    )
    for piece in REGION_PIECES:
        up.add_argument(
            f"--{piece}-url",
            metavar="URL",
            help=f"with an edge started without the {piece}: the {piece}'s URL, where it runs elsewhere (e.g. "
            f"http://regions:{getattr(defaults, piece)})",
        )
    up.set_defaults(func=run_up)
    check = target_sub.add_parser(
        "check",
        help="start the reference stack on free ports, probe every piece, stop; exit 0 if all answered",
        description="Start the reference stack on ports the OS picks, probe each piece, print the results, stop.",
    )
    check.add_argument("--only", action="append", choices=PIECES, metavar="PIECE", help="probe only this piece")
    check.set_defaults(func=run_check)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _check_url(flag: str, url: str | None, schemes: tuple[str, ...], example: str) -> str | None:
    """None, or the URL without a trailing slash; ConfigError naming the flag and the valid form."""
    if url is None:
        return None
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in schemes or not parts.hostname or parts.path.strip("/") or parts.query:
        raise ConfigError(f"--{flag}: {url!r} is not a {' or '.join(schemes)} URL of a host (e.g. {example})")
    return url.rstrip("/")


def _check_port(name: str, port: int | None) -> None:
    if port is not None and not 0 <= port <= 65535:
        raise ConfigError(f"--{name}: {port} is not a TCP port (0-65535; 0 lets the OS choose)")


def _supervise(stack: ReferenceStack) -> None:
    """Until Ctrl-C or SIGTERM. A piece that exits on its own ends it: TargetUnreachable names the piece, how it
    ended and its log's last lines (the `with` around it stops the other pieces), so `target up` exits 2."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(SUPERVISE_INTERVAL_S):
        exited = stack.exited()
        if exited:
            piece, code = next(iter(exited.items()))
            process = stack.processes[piece]
            tail = "\n".join(process.log_tail().splitlines()[-LOG_TAIL_LINES:])
            raise TargetUnreachable(
                f"piece {piece!r} of the reference stack stopped on its own ({describe_exit(code)}); the other pieces "
                f"are stopped too. Its log {process.log_path} ends with:\n{tail}"
            )


def _print_keys() -> None:
    print(f"  anon key:          {keys.ANON_KEY}")
    print(f"  service-role key:  {keys.SERVICE_ROLE_KEY}")
    print(f"  LiveKit key/secret: {keys.LIVEKIT_API_KEY} / {keys.LIVEKIT_API_SECRET}")
    print(f"  ({_LOCAL_KEYS_NOTE})")


def run_up(args: argparse.Namespace) -> int:
    _check_port("port", args.port)
    for piece in PIECES:
        _check_port(f"{piece}-port", getattr(args, f"{piece}_port"))
    if args.region:
        return _run_region(args)
    ports = StackPorts(**{piece: getattr(args, f"{piece}_port") for piece in PIECES})
    livekit_url = _check_url("livekit-url", args.livekit_url, ("ws", "wss"), "ws://livekit:7880")
    origin_urls = {
        piece: url
        for piece in REGION_PIECES
        if (url := _check_url(f"{piece}-url", getattr(args, f"{piece}_url"), ("http", "https"), "http://regions:54321"))
    }
    migrations_dir = check_folder(args.migrations) if args.migrations else None
    config = StackConfig(
        host=args.bind,
        ports=ports,
        data_dir=args.data_dir,
        pieces=tuple(args.only or PIECES),
        migrations_dir=migrations_dir,
        livekit_url=livekit_url,
        origin_urls=origin_urls,
    )
    with ReferenceStack(config) as stack:
        print("reference stack up:")
        for piece, port in stack.endpoints.ports.items():
            scheme = "ws" if piece == "livekit" else "http"
            print(f"  {piece:<8} {scheme}://{args.bind}:{port}   (log: {stack.processes[piece].log_path})")
        _print_keys()
        print("Ctrl-C stops it.", flush=True)
        _supervise(stack)
        print("stopping...", file=sys.stderr)
    return 0


def run_check(args: argparse.Namespace) -> int:
    from harness.run.target_check import probe_stack

    config = StackConfig(ports=StackPorts.any(), pieces=tuple(args.only or PIECES))
    print(f"starting the reference stack ({', '.join(config.pieces)}) on free loopback ports...", flush=True)
    with ReferenceStack(config) as stack:
        probes = probe_stack(stack.endpoints)
    for probe in probes:
        mark = "ok  " if probe.ok else "FAIL"
        print(f"  {mark} {probe.name:<32} {probe.elapsed_ms:7.1f} ms  {probe.detail}")
    failed = [p for p in probes if not p.ok]
    print(f"{len(probes) - len(failed)} of {len(probes)} probes answered")
    return 2 if failed or not probes else 0


def _run_region(args: argparse.Namespace) -> int:
    from harness.procs import serving
    from harness.refstack.region.app import build_app
    from harness.refstack.region.config import RegionConfig

    port = args.port if args.port is not None else (54321 if args.region == "ap-southeast-1" else 54322)
    migrations_dir = check_folder(args.migrations) if args.migrations else None
    config = RegionConfig(region=args.region, data_dir=args.data_dir, migrations_dir=migrations_dir)

    def ready(bound: int) -> None:
        print(f"region server {args.region} (primary) up: http://{args.bind}:{bound}")
        print(f"  data dir: {args.data_dir or 'temporary (nothing survives a restart; pass --data-dir)'}")
        _print_keys()
        print("Ctrl-C stops it.", flush=True)

    serving.serve_forever(lambda: build_app(config), args.bind, port, on_ready=ready)
    print("stopped", file=sys.stderr)
    return 0
