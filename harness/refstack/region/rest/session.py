"""Who is calling: the JWT (PostgREST reads only `Authorization`; without one, Kong's rewrite makes the apikey the
bearer) and the transaction every statement of the request runs in, as that role with those claims."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from harness.model.keys import Claims, TokenError
from harness.refstack.region.database import Database
from harness.refstack.region.rest.errors import bad_query, jwt_invalid
from harness.refstack.region.state import CONFIG, DB, api_key, bearer_token
from harness.refstack.region.token_cache import verify_token

ANON_ROLE = "anon"


@dataclass(frozen=True)
class Caller:
    claims: Claims
    db: Database

    @property
    def authenticated(self) -> bool:
        """PostgREST's `authed`: a 42501 is 403 for a JWT with a role other than anon, and 401 for anon."""
        return self.claims.role != ANON_ROLE

    def transaction(
        self, *, read_only: bool, single_statement: bool = False
    ) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """`single_statement`: the request is one statement whose outcome needs no later decision (a read; a write
        not asked for as one object), so it runs as its own implicit transaction in two round trips instead of four
        (Database.as_caller). A singular write and rpc keep the transaction: they roll back on a wrong row count."""
        return self.db.as_caller(self.claims, read_only=read_only, single_statement=single_statement)


def caller(request: web.Request) -> Caller:
    token = bearer_token(request) or api_key(request) or ""
    try:
        claims = verify_token(token, request.app[CONFIG].jwt_secret)
    except TokenError as exc:
        raise jwt_invalid("JWT expired" if exc.reason == "expired" else str(exc)) from None
    return Caller(claims, request.app[DB])


def check_query_text(request: web.Request) -> None:
    """Query-string text Postgres could not receive (lone surrogates, NUL) is PostgREST's 400, not our 500."""
    for key, value in request.query.items():
        for text in (key, value):
            if text.isascii() and "\x00" not in text:
                continue
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise bad_query(f'"failed to parse query parameter ({key})"', "not valid UTF-8") from None
            if "\x00" in text:
                raise bad_query(f'"failed to parse query parameter ({key})"', "NUL bytes are not allowed")
