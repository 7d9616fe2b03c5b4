"""Password hashes as GoTrue stores them: bcrypt (`$2a$`/`$2b$`), cost from RegionConfig.bcrypt_cost.

bcrypt is slow on purpose (cost 10 is about 60 ms of one core), so both hashing and checking run in a worker
thread: bcrypt releases the GIL, and a sign-in storm then queues in the thread pool instead of stalling the event
loop that serves every other request. bcrypt reads at most 72 bytes of a password, so GoTrue refuses longer ones
(MAX_PASSWORD_BYTES) rather than silently ignoring the tail.
"""

from __future__ import annotations

import asyncio
import secrets

import bcrypt

MIN_PASSWORD_LENGTH = 6
"""GoTrue's default minimum password length (GOTRUE_PASSWORD_MIN_LENGTH)."""
MAX_PASSWORD_BYTES = 72
"""bcrypt's input limit; GoTrue refuses longer passwords."""


def _hash(password: bytes, cost: int) -> str:
    return bcrypt.hashpw(password, bcrypt.gensalt(rounds=cost)).decode()


def _check(password: bytes, stored: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, stored)
    except ValueError:  # not a bcrypt hash, or a password over 72 bytes
        return False


async def hash_password(password: str, cost: int) -> str:
    """A fresh salted bcrypt hash, computed off the event loop."""
    return await asyncio.to_thread(_hash, password.encode(), cost)


async def check_password(password: str, stored: str | None) -> bool:
    """True when `password` matches the stored hash; False for no hash (e.g. an SSO user) or a malformed one."""
    if not stored:
        return False
    return await asyncio.to_thread(_check, password.encode(), stored.encode())


def random_password() -> str:
    """What GoTrue sets for a user created without one (admin create, invite, a new user of a magic link): 64
    random characters, so the account has a password nobody knows."""
    return secrets.token_urlsafe(48)
