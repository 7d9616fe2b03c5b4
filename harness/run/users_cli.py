"""`harness users provision|cleanup`: test users for runs against a deployment (or a `harness target up`).

A full `harness run` provisions against the embedded reference stack by itself; these commands are for preparing a
real target ahead of time and for cleaning up after an interrupted run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness.errors import ConfigError
from harness.model import limits
from harness.model.argtypes import at_most
from harness.model.credentials import Credentials, check_tag, new_run_id
from harness.model.target_config import NO_TARGET_HELP, TargetConfig, load_target, target_configured
from harness.run.users import cleanup, provision

DEFAULT_PREFIX = "harness"
PROGRESS_INTERVAL_S = 1.0
"""At most one progress line per phase per this many seconds (plus the last one)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = subparsers.add_parser("users", help="provision or remove test users, conversations and memberships")
    sub = users.add_subparsers(title="users commands", metavar="COMMAND", required=True)

    up = sub.add_parser("provision", help="create test users, their conversations, and a credentials file (0600)")
    up.add_argument("--count", type=_count, required=True, metavar="N", help="number of users")
    up.add_argument(
        "--group-size", type=_group_size, default=4, metavar="K",
        help="users per block: one group of K plus ring pairs inside each block (default: %(default)s)",
    )  # fmt: skip
    up.add_argument("--out", type=Path, metavar="FILE", help="credentials file (default: ./credentials-RUNID.json)")
    up.add_argument("--prefix", default=DEFAULT_PREFIX, help="tag on every email and title (default: %(default)s)")
    up.add_argument("--run-id", help="run id tag (default: UTC time plus random hex)")
    up.add_argument("--email-domain", default="example.com", help="domain of the users' emails (default: %(default)s)")
    _target_args(up)
    up.set_defaults(func=_provision)

    down = sub.add_parser("cleanup", help="remove test users and everything they own")
    which = down.add_mutually_exclusive_group(required=True)
    which.add_argument("--credentials", type=Path, metavar="FILE", help="remove the run in this credentials file")
    which.add_argument("--prefix", help="remove every run tagged with this prefix")
    _target_args(down)
    down.set_defaults(func=_cleanup)


def _target_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", type=Path, metavar="FILE", help="read SUPABASE_URL etc. from this file")
    parser.add_argument("--target-url", metavar="URL", help="Supabase URL (overrides SUPABASE_URL)")
    parser.add_argument(
        "--confirm-remote", action="store_true", help="allow a non-loopback target not listed in HARNESS_ALLOW_HOSTS"
    )
    parser.add_argument("--confirm-target", dest="confirm_remote", action="store_true", help=argparse.SUPPRESS)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number (e.g. 1000)")
    return value


_count = at_most(_positive, limits.MAX_USERS, f"{limits.MAX_USERS:,} users")


def _group_size(text: str) -> int:
    value = _positive(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"{text!r} is too small; a conversation needs 2 or more members (e.g. 4)")
    return value


def _target(args: argparse.Namespace, fallback_url: str | None = None) -> TargetConfig:
    url = args.target_url
    if url is None and fallback_url is not None and not target_configured(args.env_file):
        url = fallback_url  # a credentials file remembers its target
    if url is None and not target_configured(args.env_file):
        raise ConfigError(
            "no target: to provision against a deployment, "
            f"{NO_TARGET_HELP}, or pass --target-url URL (a loopback URL, e.g. a `harness target up` at "
            "http://127.0.0.1:54321, uses the local demo keys). `harness run` provisions against the embedded "
            "reference stack by itself."
        )
    target = load_target(args.env_file, supabase_url=url)
    target.check_allowed(confirmed=args.confirm_remote)
    return target


class _Progress:
    """Prints `users: 250/1000` lines to stderr, at most once per PROGRESS_INTERVAL_S per phase."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last.get(phase, 0.0) < PROGRESS_INTERVAL_S:
            return
        self._last[phase] = now
        print(f"  {phase}: {done}/{total}", file=sys.stderr, flush=True)


def _provision(args: argparse.Namespace) -> int:
    prefix = check_tag("--prefix", args.prefix)
    run_id = check_tag("--run-id", args.run_id) if args.run_id else new_run_id()
    out = args.out or Path(f"credentials-{run_id}.json")
    target = _target(args)
    print(f"provisioning {args.count} users on {target.supabase_url} (run {run_id})", file=sys.stderr)
    credentials = provision(
        target, args.count, args.group_size, prefix=prefix, run_id=run_id, email_domain=args.email_domain,
        progress=_Progress(),
    )  # fmt: skip
    credentials.save(out)
    print(f"{len(credentials.users)} users, {len(credentials.conversations)} conversations: {out} (mode 0600)")
    print(f"remove them with: harness users cleanup --credentials {out}")
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    if args.credentials is not None:
        credentials = Credentials.load(args.credentials)
        target = _target(args, fallback_url=credentials.target_url)
        removed = cleanup(target, credentials, progress=_Progress())
    else:
        target = _target(args)
        removed = cleanup(target, check_tag("--prefix", args.prefix), progress=_Progress())
    print(f"removed {removed.users} users and {removed.conversations} conversations from {target.supabase_url}")
    return 0
