"""LiveKit access tokens: find the bearer token on a request and verify it (docs/protocols.md §7.1).

Mirrors livekit-server's auth middleware: a bad token is rejected before any handler runs, with status 401 and a
plain-text body; a request without a token passes with no grants, and each handler then answers
"permissions denied" in its own shape. Messages never contain the token itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

LEEWAY_S = 60
"""Clock skew tolerated on `exp` and `nbf`, as livekit-server's verifier (1 minute)."""

BEARER_PREFIX = "Bearer "
ACCESS_TOKEN_PARAM = "access_token"


class AuthError(Exception):
    """A request was refused before reaching a handler; rendered as `status` with a plain-text body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


PERMISSION_DENIED = "permissions denied"

_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """`text` with every lone UTF-16 surrogate replaced by U+FFFD, as Go's JSON decoder reads `"\\ud800"`.

    Python's json module keeps lone surrogates in strings (and aiohttp keeps undecodable header bytes as
    surrogates), but they cannot be encoded as UTF-8: in a protobuf field or a response body they would fail the
    request with a 500. Everything read from a token, and every text echoed in an error, goes through here."""
    return _SURROGATE.sub("\ufffd", text)


@dataclass(frozen=True)
class Grants:
    """The verified claims of a LiveKit access token. `video` keeps the wire's camelCase keys."""

    identity: str
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    video: dict[str, Any] = field(default_factory=dict)

    def allows(self, key: str) -> bool:
        """True when the boolean video grant `key` (e.g. "roomCreate") is set to true."""
        return self.video.get(key) is True

    @property
    def room(self) -> str:
        room = self.video.get("room")
        return room if isinstance(room, str) else ""


def bearer_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The token from `Authorization: Bearer …`, else from `?access_token=`; None when there is neither."""
    header = headers.get("Authorization", "")
    if header:
        if not header.startswith(BEARER_PREFIX):
            raise AuthError(401, f"invalid authorization header. Must start with {BEARER_PREFIX}")
        return header[len(BEARER_PREFIX) :]
    return query.get(ACCESS_TOKEN_PARAM) or None


def verify(token: str, *, api_key: str, api_secret: str) -> Grants:
    """Verify an HS256 LiveKit token issued by `api_key`; raise AuthError(401, …) when it is not acceptable."""
    if not token.isascii():  # a JWT is base64url and dots; other bytes in a header arrive here as surrogates
        raise AuthError(401, "invalid authorization token")
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AuthError(401, "invalid authorization token") from exc
    issuer = unverified.get("iss")
    if issuer != api_key:
        raise AuthError(401, f"invalid API key: {valid_text(issuer) if isinstance(issuer, str) else ''}")
    try:
        claims = jwt.decode(
            token, api_secret, algorithms=["HS256"], leeway=LEEWAY_S, options={"require": ["exp"], "verify_aud": False}
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError(401, "invalid authorization token: token is expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise AuthError(401, "invalid authorization token: token is not valid yet") from exc
    except jwt.InvalidSignatureError as exc:
        raise AuthError(401, "invalid authorization token: signature is invalid") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise AuthError(401, f"invalid authorization token: missing the {exc.claim!r} claim") from exc
    except jwt.PyJWTError as exc:
        raise AuthError(401, f"invalid authorization token: {type(exc).__name__}") from exc
    return _grants(claims)


def _grants(claims: dict[str, Any]) -> Grants:
    identity = claims.get("sub") or claims.get("jti") or ""
    video = claims.get("video")
    video = video if isinstance(video, dict) else {}
    attributes = claims.get("attributes")
    attributes = attributes if isinstance(attributes, dict) else {}
    return Grants(
        identity=_str(identity),
        name=_str(claims.get("name")),
        metadata=_str(claims.get("metadata")),
        # A map of strings, as livekit-server's ClaimGrants; only scalars are turned into text (a nested value
        # could be nested deeply enough for str() to overflow the stack).
        attributes={valid_text(k): valid_text(str(v)) for k, v in attributes.items() if _is_scalar(v)},
        video={k: valid_text(v) if isinstance(v, str) else v for k, v in video.items()},
    )


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool)


def _str(value: object) -> str:
    return valid_text(value) if isinstance(value, str) else ""


def authenticate(
    headers: Mapping[str, str], query: Mapping[str, str], *, api_key: str, api_secret: str
) -> Grants | None:
    """The request's grants, None when it carries no token; AuthError when the token is bad."""
    token = bearer_token(headers, query)
    if token is None:
        return None
    return verify(token, api_key=api_key, api_secret=api_secret)
