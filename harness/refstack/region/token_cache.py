"""`keys.verify` with a bounded cache in front: a user's token is checked once, not on every request.

HS256 verification (PyJWT) cost ~6 % of the Singapore region's CPU under `harness load` (Realtime joins, Storage
and REST each verified every request's token). A cached answer is honoured only until the token's `exp`; after
that it is "expired", as a fresh verification would say. Refusals are not cached (they are rare and cheap to
repeat), so a bad token is re-examined every time.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from harness.model import keys
from harness.model.keys import Claims, TokenError

CACHE_SIZE = 20_000
"""Tokens remembered (oldest out first); more than the users of the largest local run."""

_cache: OrderedDict[tuple[str, str, bool], Claims] = OrderedDict()


def verify_token(token: str, secret: str, *, require_exp: bool = True) -> Claims:
    """The verified claims of `token`, from the cache when it was verified before and has not expired."""
    cache_key = (secret, token, require_exp)
    claims = _cache.get(cache_key)
    if claims is not None:
        exp = claims.raw.get("exp")
        if exp is None or float(exp) > time.time():
            return claims
        del _cache[cache_key]
        raise TokenError("expired", "JWT expired")
    claims = keys.verify(token, secret, require_exp=require_exp)
    _cache[cache_key] = claims
    if len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return claims
