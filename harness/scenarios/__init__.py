"""What the Locust user classes in `locustfiles/` do, kept out of the locustfiles (STYLE.md guideline 1).

    locustfiles/messaging.py ─► chat.Chat          realtime subscriptions, sends, history, typing ─► delivery.py
    locustfiles/meetings.py  ─► meeting.Meeting    token, /rtc join, timed pings, leave
    locustfiles/files.py     ─► files.Files        uploads (sizes.py), downloads, signed URLs
    locustfiles/web.py       ─► web.WebShell       app shell and assets through the edge, header checks
                 all of them ─► base.AccountUser   (test user, session, sign-in) ─► runstate.RunState
                                                    (target, credentials or provisioning, tracker, slots)
    settings.py   HARNESS_* variables          viewer.py   CloudFront-Viewer-Country on the local stack

Every module here imports Locust and the gevent clients: use it only in Locust processes and `tests/gevent/`.
"""

from harness.scenarios.runstate import install, register

__all__ = ["install", "register"]
