"""The mail GoTrue would have sent: the reference stack sends none, so each one-time password and link is kept here
(in the region's memory, newest per address) and read back through `GET /auth/v1/admin/test/otp?email=` with the
service-role key (docs/reference-stack.md). Only the primary's process issues them, so only it has them.

GoTrue itself stores nothing but the hash of an OTP (sha224 of address + OTP, in auth.users' *_token columns):
this capture stands in for the user's mailbox, not for anything GoTrue keeps.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

OTP_LENGTH = 6
"""GoTrue's default GOTRUE_MAILER_OTP_LENGTH."""
OTP_EXPIRY_S = 86_400
"""GoTrue's default GOTRUE_MAILER_OTP_EXP: a mailed OTP or link is good for a day."""
MAX_ADDRESSES = 50_000
"""Addresses remembered (oldest out first); more than the users of the largest local run."""


def new_otp() -> str:
    return f"{secrets.randbelow(10**OTP_LENGTH):0{OTP_LENGTH}d}"


def token_hash(address: str, otp: str) -> str:
    """GoTrue's crypto.GenerateTokenHash: what the link carries and the database stores."""
    return hashlib.sha224((address + otp).encode()).hexdigest()


@dataclass(frozen=True)
class Mail:
    email: str
    type: str
    """signup, invite, magiclink, recovery, email_change, reauthentication."""
    otp: str
    token_hash: str
    action_link: str
    redirect_to: str
    sent_at: float


class Outbox:
    def __init__(self) -> None:
        self._last: OrderedDict[str, Mail] = OrderedDict()

    def send(self, mail: Mail) -> None:
        self._last.pop(mail.email, None)
        self._last[mail.email] = mail
        if len(self._last) > MAX_ADDRESSES:
            self._last.popitem(last=False)

    def last(self, email: str) -> dict[str, Any] | None:
        mail = self._last.get(email)
        return asdict(mail) if mail is not None else None


OUTBOX = web.AppKey("auth_outbox", Outbox)


def setup(app: web.Application) -> None:
    app[OUTBOX] = Outbox()


def mail(
    request: web.Request, email: str, kind: str, otp: str, hashed: str, action_link: str, redirect_to: str
) -> None:
    request.app[OUTBOX].send(Mail(email, kind, otp, hashed, action_link, redirect_to, time.time()))
