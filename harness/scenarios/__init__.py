"""What the Locust user classes in `locustfiles/` do, kept out of the locustfiles (thin user classes, separate
protocol clients: docs/architecture.md).

    locustfiles/messaging.py ─► chat.Chat          subscriptions, sends, history, typing ─► delivery_recorder.py
    locustfiles/meetings.py  ─► meeting.Meeting    token, /rtc join, timed pings, leave
    locustfiles/files.py     ─► files.Files        uploads (sizes.py), downloads, signed URLs
    locustfiles/web.py       ─► web.WebShell       app shell and assets through the edge, header checks
                 all of them ─► base.AccountUser   (test user, session, sign-in) ─► runstate.RunState
                                                    (target, credentials or provisioning, tracker, slots)
    settings.py   HARNESS_* variables          viewer.py   CloudFront-Viewer-Country on the local stack

Importing this package loads nothing: `settings`, `sizes`, `viewer` and `provisioning` are plain Python; the
behaviour modules use the gevent clients and Locust's user and event API, so import them only in Locust
processes and `tests/gevent/`.
"""

from __future__ import annotations

from typing import Any


def register() -> None:
    """Install the run state on every Locust environment of this process (locustfiles call this at import)."""
    from harness.scenarios.runstate import register as register_run_state

    register_run_state()


def install(environment: Any) -> Any:
    """Attach the run state to one Locust environment (see `runstate.install`)."""
    from harness.scenarios.runstate import install as install_run_state

    return install_run_state(environment)


__all__ = ["install", "register"]
