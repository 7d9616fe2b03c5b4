"""Token verification (harness/refstack/livekit/auth.py), as livekit-server's auth middleware."""

from __future__ import annotations

import time

import pytest
from lk_helpers import KEY, SECRET, join_token, raw_token

from harness.refstack.livekit.auth import AuthError, bearer_token, verify


def test_livekit_api_token_verifies_with_identity_room_and_grants() -> None:
    grants = verify(join_token("alice", "standup"), api_key=KEY, api_secret=SECRET)
    assert grants.identity == "alice"
    assert grants.room == "standup"
    assert grants.allows("roomJoin")
    assert not grants.allows("roomAdmin")


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (raw_token({}, secret="another-secret-another-secret-xx"), "invalid authorization token: signature is invalid"),
        (raw_token({"iss": "otherkey"}), "invalid API key: otherkey"),
        (raw_token({"exp": int(time.time()) - 120}), "invalid authorization token: token is expired"),
        (raw_token({"exp": None}), "invalid authorization token: missing the 'exp' claim"),
        ("not-a-jwt", "invalid authorization token"),
    ],
    ids=["bad-signature", "wrong-iss", "expired", "no-exp", "malformed"],
)
def test_bad_tokens_are_401_with_a_plain_reason(token: str, message: str) -> None:
    with pytest.raises(AuthError) as caught:
        verify(token, api_key=KEY, api_secret=SECRET)
    assert caught.value.status == 401
    assert caught.value.message == message
    assert token not in caught.value.message


def test_expiry_within_the_one_minute_leeway_is_accepted() -> None:
    grants = verify(raw_token({"exp": int(time.time()) - 30}), api_key=KEY, api_secret=SECRET)
    assert grants.identity == "alice"


def test_identity_falls_back_to_jti() -> None:
    assert verify(raw_token({"sub": None, "jti": "bob"}), api_key=KEY, api_secret=SECRET).identity == "bob"


def test_header_wins_over_query_and_must_be_bearer() -> None:
    assert bearer_token({"Authorization": "Bearer abc"}, {"access_token": "xyz"}) == "abc"
    assert bearer_token({}, {"access_token": "xyz"}) == "xyz"
    assert bearer_token({}, {}) is None
    with pytest.raises(AuthError, match="Must start with Bearer"):
        bearer_token({"Authorization": "Token abc"}, {})
