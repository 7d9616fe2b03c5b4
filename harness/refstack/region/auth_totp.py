"""RFC 6238 TOTP as GoTrue's MFA uses it (pquerna/otp): SHA-1, 6 digits, 30 s steps, a 20-byte secret in unpadded
base32, and one step of skew either way when checking a code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

STEP_S = 30
DIGITS = 6
SKEW_STEPS = 1
SECRET_BYTES = 20


def new_secret() -> str:
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")


def code_at(secret: str, at: float) -> str:
    """The code of `secret` for the step holding unix time `at` (RFC 4226 dynamic truncation)."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at // STEP_S)), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 10**DIGITS:0{DIGITS}d}"


def valid(secret: str, code: str, at: float | None = None) -> bool:
    now = time.time() if at is None else at
    return any(
        hmac.compare_digest(code_at(secret, now + step * STEP_S), code) for step in range(-SKEW_STEPS, SKEW_STEPS + 1)
    )


def uri(secret: str, issuer: str, account: str) -> str:
    """The otpauth:// URI authenticator apps read (pquerna/otp's Key.URL)."""
    query = urlencode(
        {"algorithm": "SHA1", "digits": str(DIGITS), "issuer": issuer, "period": str(STEP_S), "secret": secret}
    )
    return f"otpauth://totp/{quote(issuer, safe='')}:{quote(account, safe='@')}?{query}"
