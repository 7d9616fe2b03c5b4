"""Keys of the embedded reference stack, and the HS256 JWT helpers every piece of it shares.

LOCAL-ONLY DEMO KEYS. These are Supabase's well-known local-development secret and keys (published in the
Supabase CLI and docs); they protect nothing and must never be used for a real project. A real deployment's keys
come from its `production.env`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
ANON_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9."
    "CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
)
SERVICE_ROLE_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4Mz"
    "gxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
)
LIVEKIT_API_KEY = "devkey"
LIVEKIT_API_SECRET = "secret-local-only-livekit-demo-key-0123456789"

ADMIN_ROLES = frozenset({"service_role", "supabase_admin"})


class TokenError(Exception):
    """A bearer token was rejected. `reason` is one of: malformed, bad_signature, expired, missing_claims."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Claims:
    """The verified claims of a Supabase JWT, with the two the access rules use pulled out."""

    role: str
    sub: str | None
    raw: dict[str, Any]

    @property
    def is_service(self) -> bool:
        return self.role in ADMIN_ROLES


def verify(token: str, secret: str = JWT_SECRET, *, require_exp: bool = True) -> Claims:
    """Verify an HS256 token; raise TokenError with a reason the caller maps to its service's error shape."""
    if not token.isascii():
        # A JWT is base64url and dots. Header bytes that are not UTF-8 reach us as lone surrogates (aiohttp decodes
        # with surrogateescape), which PyJWT cannot even encode: refuse them as the malformed tokens they are.
        raise TokenError("malformed", "JWT cannot be decoded: it is not ASCII")
    try:
        raw = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"verify_aud": False, "require": ["exp"] if require_exp else []},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("expired", "JWT expired") from exc
    except jwt.InvalidSignatureError as exc:
        raise TokenError("bad_signature", "JWSInvalidSignature") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError("missing_claims", f"JWT is missing the {exc.claim!r} claim") from exc
    except jwt.PyJWTError as exc:
        raise TokenError("malformed", f"JWT cannot be decoded: {exc}") from exc
    role = raw.get("role")
    if not isinstance(role, str):
        raise TokenError("missing_claims", "JWT is missing the 'role' claim")
    sub = raw.get("sub")
    return Claims(role=role, sub=sub if isinstance(sub, str) else None, raw=raw)


def sign(claims: dict[str, Any], secret: str = JWT_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def mint_access_token(
    *,
    user_id: str,
    email: str,
    issuer: str,
    session_id: str | None = None,
    ttl_s: int = 3600,
    user_metadata: dict[str, Any] | None = None,
    app_metadata: dict[str, Any] | None = None,
    secret: str = JWT_SECRET,
    now: float | None = None,
    role: str = "authenticated",
    aal: str = "aal1",
    signed_in_at: float | None = None,
    amr: list[dict[str, Any]] | None = None,
    is_anonymous: bool = False,
) -> tuple[str, int]:
    """Mint a GoTrue-shaped access token (docs/protocols.md §2.3). Returns (token, expires_at).

    `role` and `aal` come from the user and session rows. `amr` lists how the session was authenticated, most
    recent first (GoTrue reads it from auth.mfa_amr_claims); without it, one password entry stamped `signed_in_at`
    (when the session was created, which stays the same across refreshes; default: now).
    """
    issued = int(now if now is not None else time.time())
    exp = issued + ttl_s
    claims = {
        "iss": issuer,
        "sub": user_id,
        "aud": "authenticated",
        "exp": exp,
        "iat": issued,
        "email": email,
        "phone": "",
        "app_metadata": app_metadata if app_metadata is not None else {"provider": "email", "providers": ["email"]},
        "user_metadata": user_metadata or {},
        "role": role,
        "aal": aal,
        "amr": amr or [{"method": "password", "timestamp": int(signed_in_at) if signed_in_at is not None else issued}],
        "session_id": session_id or str(uuid.uuid4()),
        "is_anonymous": is_anonymous,
    }
    return sign(claims, secret), exp
