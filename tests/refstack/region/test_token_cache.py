"""The region's token cache answers like a fresh verification: cached until `exp`, expired after, refusals never
cached."""

from __future__ import annotations

import time

import pytest

from harness.model import keys
from harness.refstack.region import token_cache


def test_a_cached_token_is_honoured_until_exp_then_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    exp = int(time.time()) + 60
    token = keys.sign({"role": "authenticated", "sub": "u1", "exp": exp})
    calls = []
    real = keys.verify
    monkeypatch.setattr(keys, "verify", lambda *a, **k: calls.append(a) or real(*a, **k))
    first = token_cache.verify_token(token, keys.JWT_SECRET)
    assert token_cache.verify_token(token, keys.JWT_SECRET) is first and len(calls) == 1
    monkeypatch.setattr(token_cache.time, "time", lambda: exp + 1.0)
    with pytest.raises(keys.TokenError) as err:
        token_cache.verify_token(token, keys.JWT_SECRET)
    assert err.value.reason == "expired"


def test_a_refused_token_is_checked_again_every_time() -> None:
    token = keys.sign({"role": "authenticated", "exp": int(time.time()) + 60}, secret="x" * 40)
    for _ in range(2):
        with pytest.raises(keys.TokenError) as err:
            token_cache.verify_token(token, keys.JWT_SECRET)
        assert err.value.reason == "bad_signature"
    assert not any(key[1] == token for key in token_cache._cache)
