"""An acknowledged write survives a restart of the region server on the same data directory."""

from __future__ import annotations

from pathlib import Path

import httpx
from aiohttp import web

from harness.procs.serving import background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from tests.refstack.region.conftest import create_conversation, create_user, user_headers


def test_acknowledged_insert_survives_restart(tmp_path: Path) -> None:
    def factory() -> web.Application:
        return build_app(RegionConfig(data_dir=tmp_path))

    with background(factory) as first:
        user_id, token, refresh = create_user(first.url)
        conversation = create_conversation(first.url, token, [])
        row = {"conversation_id": conversation, "sender_id": user_id, "client_msg_id": "durable-1", "content": "kept"}
        ack = httpx.post(f"{first.url}/rest/v1/messages", headers=user_headers(token), json=row)
        assert ack.status_code == 201

    with background(factory) as restarted:
        url = f"{restarted.url}/rest/v1/messages?client_msg_id=eq.durable-1"
        assert [r["content"] for r in httpx.get(url, headers=user_headers(token)).json()] == ["kept"]
        # Sessions survive too: the refresh token issued before the restart still works.
        refreshed = httpx.post(
            f"{restarted.url}/auth/v1/token?grant_type=refresh_token",
            headers={"apikey": user_headers(token)["apikey"]},
            json={"refresh_token": refresh},
        )
        assert refreshed.status_code == 200
