"""`harness target up`: run the embedded reference stack (or one region server) in the foreground."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError, TargetUnreachable
from harness.model import keys
from harness.model.hosts import is_loopback_url
from harness.model.target_config import read_env_file
from harness.procs.child import describe_exit
from harness.refstack.edge.build import BUILDS, DEFAULT_DELAY_MS
from harness.refstack.edge.build import PATH as BUILD_PATH
from harness.refstack.postgres.migrations import check_folder
from harness.refstack.region.config import REGIONS
from harness.refstack.stack import PIECES, ReferenceStack, StackConfig, StackPorts

MIGRATIONS_HELP = (
    "a Supabase migrations folder (<version>_<name>.sql files) applied in filename order at start, as `supabase db "
    "push` would, so smoke and load runs test your own tables and policies (default: the app's own, "
    "supabase/migrations/); a failing file stops start-up with its line and PostgreSQL's message"
)
SUPERVISE_INTERVAL_S = 0.5
"""How often `target up` checks that every piece still runs."""
LOG_TAIL_LINES = 5
"""Lines of a dead piece's log quoted in the message."""
_LOCAL_KEYS_NOTE = "local demo keys: they protect nothing; never use them for a real project"
_LIVEKIT_NAMES = ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")


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
    up.add_argument(
        "--advertise-host",
        metavar="HOST",
        help="the name other machines reach the stack at (e.g. a compose service), used in the LiveKit URL the "
        "token function hands out (default: --bind)",
    )
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
    up.add_argument(
        "--env-file",
        type=Path,
        metavar="FILE",
        help="a production.env-style file: its LIVEKIT_API_KEY / LIVEKIT_API_SECRET (else the environment's) are the "
        "key pair the LiveKit stand-in accepts and the regions sign LiveKit tokens with (default: the demo pair)",
    )
    up.set_defaults(func=run_up)
    check = target_sub.add_parser(
        "check",
        help="start the reference stack on free ports, probe every piece, stop; exit 0 if all answered",
        description="Start the reference stack on ports the OS picks, probe each piece, print the results, stop.",
    )
    check.add_argument("--only", action="append", choices=PIECES, metavar="PIECE", help="probe only this piece")
    check.set_defaults(func=run_check)
    build = target_sub.add_parser(
        "build",
        help="switch the reference edge's build: good, slow or failing (the deployment gate's demo)",
        description="Switches the running reference edge to a 'slow' (every request held --delay-ms) or 'failing' "
        "(every request 503) build, or back to 'good', as a deploy and a rollback would (docs/deploy-gate.md). "
        "Authenticates with SUPABASE_SERVICE_ROLE_KEY (default: the reference stack's demo key). Loopback only.",
    )
    build.add_argument("build", choices=BUILDS, help="the build to switch to")
    build.add_argument(
        "--edge", default="http://127.0.0.1:54320", metavar="URL", help="the edge (default: %(default)s)"
    )
    build.add_argument(
        "--delay-ms", type=int, default=DEFAULT_DELAY_MS, metavar="MS", help="for slow (default: %(default)s)"
    )
    build.set_defaults(func=run_build)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


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


@dataclass(frozen=True)
class LiveKitKeys:
    key: str = keys.LIVEKIT_API_KEY
    secret: str = keys.LIVEKIT_API_SECRET
    source: str | None = None
    """Where a user's pair came from ("environment" or the env file); None for the demo pair."""


def livekit_keys(env_file: Path | None, environ: Mapping[str, str] | None = None) -> LiveKitKeys:
    """LIVEKIT_API_KEY / LIVEKIT_API_SECRET from `env_file` (its values win) or the environment; the demo pair
    when neither sets them. ConfigError when only one of the two is set (the stand-in could not check tokens)."""
    values = {k: v for k, v in (os.environ if environ is None else environ).items() if k in _LIVEKIT_NAMES}
    source = "environment"
    if env_file is not None:
        from_file = {k: v for k, v in read_env_file(env_file).items() if k in _LIVEKIT_NAMES}
        if from_file:
            values.update(from_file)
            source = str(env_file) if len(from_file) == len(_LIVEKIT_NAMES) else f"{env_file} and the environment"
    key, secret = (values.get(name, "").strip() for name in _LIVEKIT_NAMES)
    if not key and not secret:
        return LiveKitKeys()
    if not key or not secret:
        missing, present = ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET") if not key else _LIVEKIT_NAMES[::-1]
        raise ConfigError(
            f"{present} is set ({source}) but {missing} is not: the LiveKit stand-in needs both (the key names the "
            f"secret that signs tokens), e.g. LIVEKIT_API_KEY=APIxxxx and LIVEKIT_API_SECRET=<32+ characters>; or "
            "set neither to use the demo pair"
        )
    return LiveKitKeys(key, secret, source)


def _print_keys(livekit: LiveKitKeys = LiveKitKeys()) -> None:
    print(f"  anon key:          {keys.ANON_KEY}")
    print(f"  service-role key:  {keys.SERVICE_ROLE_KEY}")
    if livekit.source is None:
        print(f"  LiveKit key/secret: {livekit.key} / {livekit.secret}")
    else:  # the user's secret is not echoed
        print(f"  LiveKit key/secret: {livekit.key} / (LIVEKIT_API_SECRET from {livekit.source})")
    print(f"  ({_LOCAL_KEYS_NOTE})")


def run_up(args: argparse.Namespace) -> int:
    _check_port("port", args.port)
    for piece in PIECES:
        _check_port(f"{piece}-port", getattr(args, f"{piece}_port"))
    livekit = livekit_keys(args.env_file)
    if args.region:
        return _run_region(args, livekit)
    ports = StackPorts(**{piece: getattr(args, f"{piece}_port") for piece in PIECES})
    migrations_dir = check_folder(args.migrations) if args.migrations else None
    config = StackConfig(
        host=args.bind,
        ports=ports,
        data_dir=args.data_dir,
        pieces=tuple(args.only or PIECES),
        migrations_dir=migrations_dir,
        livekit_api_key=livekit.key,
        livekit_api_secret=livekit.secret,
        advertise_host=args.advertise_host,
    )
    with ReferenceStack(config) as stack:
        print("reference stack up:")
        for piece, port in stack.endpoints.ports.items():
            scheme = "ws" if piece == "livekit" else "http"
            print(f"  {piece:<8} {scheme}://{args.bind}:{port}   (log: {stack.processes[piece].log_path})")
        _print_keys(livekit)
        print("Ctrl-C stops it.", flush=True)
        _supervise(stack)
        print("stopping...", file=sys.stderr)
    return 0


def run_build(args: argparse.Namespace) -> int:
    import httpx

    if not is_loopback_url(args.edge):
        raise ConfigError(f"--edge {args.edge}: the build switch is the reference edge's, on loopback only")
    key = os.environ.get("SUPABASE_SERVICE_ROLE_KEY") or keys.SERVICE_ROLE_KEY
    try:
        reply = httpx.post(
            args.edge.rstrip("/") + BUILD_PATH,
            json={"build": args.build, "delay_ms": args.delay_ms},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
    except httpx.HTTPError as exc:
        raise TargetUnreachable(
            f"--edge {args.edge}: no answer ({type(exc).__name__}); is `harness target up` running?"
        ) from None
    if reply.status_code != 200:
        raise ConfigError(f"--edge {args.edge}: the build switch answered {reply.status_code}: {reply.text[:300]}")
    print(f"edge build: {reply.json()['build']}")
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


def _run_region(args: argparse.Namespace, livekit: LiveKitKeys) -> int:
    from harness.procs import serving
    from harness.refstack.region.app import build_app
    from harness.refstack.region.config import RegionConfig

    port = args.port if args.port is not None else (54321 if args.region == "ap-southeast-1" else 54322)
    migrations_dir = check_folder(args.migrations) if args.migrations else None
    config = RegionConfig(
        region=args.region,
        data_dir=args.data_dir,
        migrations_dir=migrations_dir,
        livekit_api_key=livekit.key,
        livekit_api_secret=livekit.secret,
    )

    def ready(bound: int) -> None:
        print(f"region server {args.region} (primary) up: http://{args.bind}:{bound}")
        print(f"  data dir: {args.data_dir or 'temporary (nothing survives a restart; pass --data-dir)'}")
        _print_keys(livekit)
        print("Ctrl-C stops it.", flush=True)

    serving.serve_forever(lambda: build_app(config), args.bind, port, on_ready=ready)
    print("stopped", file=sys.stderr)
    return 0
