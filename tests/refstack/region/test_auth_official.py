"""supabase-py's auth client through a whole session lifecycle against the region: sign up, sign in, get the user,
refresh, update, sign out; then what sign-out ended is refused the way the client expects."""

from __future__ import annotations

import asyncio

import jwt
import pytest
from supabase_auth.errors import AuthApiError

from harness.model import keys
from harness.procs.serving import BackgroundServer
from supabase import AsyncClientOptions, acreate_client
from tests.refstack.region.conftest import PASSWORD, RegionSql


def test_official_client_session_lifecycle(region: BackgroundServer, region_sql: RegionSql) -> None:
    async def scenario() -> str:
        options = AsyncClientOptions(auto_refresh_token=False, persist_session=False)
        client = await acreate_client(region.url, keys.ANON_KEY, options=options)
        signed_up = await client.auth.sign_up(
            {"email": "quinn@example.com", "password": PASSWORD, "options": {"data": {"display_name": "Quinn"}}}
        )
        assert signed_up.user is not None and signed_up.user.user_metadata == {"display_name": "Quinn"}
        assert [i.provider for i in signed_up.user.identities or []] == ["email"]

        signed_in = await client.auth.sign_in_with_password({"email": "quinn@example.com", "password": PASSWORD})
        assert signed_in.session is not None
        session_id = jwt.decode(signed_in.session.access_token, options={"verify_signature": False})["session_id"]

        fetched = await client.auth.get_user()
        assert fetched is not None and fetched.user.id == signed_up.user.id

        refreshed = await client.auth.refresh_session()
        assert refreshed.session is not None
        assert refreshed.session.refresh_token != signed_in.session.refresh_token

        updated = await client.auth.update_user({"data": {"status": "busy"}})
        assert updated.user.user_metadata == {"display_name": "Quinn", "status": "busy"}

        old_access = refreshed.session.access_token
        old_refresh = refreshed.session.refresh_token
        await client.auth.sign_out()
        assert await client.auth.get_session() is None

        with pytest.raises(AuthApiError) as refused:
            await client.auth.refresh_session(old_refresh)
        assert refused.value.code == "refresh_token_not_found"
        with pytest.raises(AuthApiError) as ended:
            await client.auth.get_user(old_access)
        assert ended.value.code == "session_not_found" and ended.value.status == 403
        return str(session_id)

    session_id = asyncio.run(scenario())
    assert region_sql("select 1 from auth.sessions where id = $1::uuid", session_id) == []
    (profile,) = region_sql("select display_name from public.profiles where display_name = 'Quinn'")
    assert profile["display_name"] == "Quinn"
