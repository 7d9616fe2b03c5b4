"""Checking Realtime's JWTs: the socket's connect token (handshake) and each channel's access token.

Realtime refuses tokens without `role` or `exp` (ChannelsAuthorization.authorize_conn), and words its errors
differently at the handshake (JSON `{"error"}`, PROTOCOLS.md §4.1) and at a join (`"<Code>: <message>"`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from harness.model.keys import Claims, TokenError
from harness.refstack.region.token_cache import verify_token

HANDSHAKE_ERRORS = {
    "missing": "API key is missing",
    "expired": "Token has expired",
    "missing_claims": "Fields `role` and `exp` are required in JWT",
    "malformed": "The token provided is not a valid JWT",
    "bad_signature": "Failed to validate JWT signature",
}
"""The handshake's 401 messages by `TokenError.reason` (user_socket.ex via PROTOCOLS.md §4.1)."""


@dataclass(frozen=True)
class Rejected:
    """Why a token was refused: `reason` is a TokenError reason (or "missing"); `join_reason` is a join error."""

    reason: str
    join_reason: str

    @property
    def handshake_message(self) -> str:
        return HANDSHAKE_ERRORS.get(self.reason, HANDSHAKE_ERRORS["malformed"])


def _expired_seconds(token: str) -> int:
    try:
        exp = jwt.decode(token, options={"verify_signature": False})["exp"]
        return max(0, int(time.time()) - int(exp))
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return 0


def check(token: str | None, secret: str) -> Claims | Rejected:
    """Verify a Realtime token (HS256, `role` and `exp` required)."""
    if not token:
        return Rejected("missing", "Unauthorized: API key is missing")
    try:
        claims = verify_token(token.strip(), secret, require_exp=True)
    except TokenError as exc:
        if exc.reason == "expired":
            message = f"Token has expired {_expired_seconds(token)} seconds ago"
            return Rejected("expired", f"InvalidJWTToken: {message}")
        if exc.reason == "missing_claims":
            return Rejected("missing_claims", f"InvalidJWTToken: {HANDSHAKE_ERRORS['missing_claims']}")
        if exc.reason == "bad_signature":
            return Rejected("bad_signature", f"JwtSignatureError: {HANDSHAKE_ERRORS['bad_signature']}")
        return Rejected("malformed", f"Unauthorized: {HANDSHAKE_ERRORS['malformed']}")
    if not isinstance(claims.raw.get("exp"), int):
        return Rejected("missing_claims", f"InvalidJWTToken: {HANDSHAKE_ERRORS['missing_claims']}")
    return claims


def seconds_left(claims: Claims, now: float | None = None) -> float:
    """Seconds until the token expires (negative once it has)."""
    return float(claims.raw["exp"]) - (time.time() if now is None else now)
