"""`harness target up` takes the LiveKit key pair from LIVEKIT_API_KEY / LIVEKIT_API_SECRET (the environment, or
--env-file, which wins) instead of always its demo pair; the secret reaches the pieces through their environment,
never their command line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from livekit import api

from harness.errors import ConfigError
from harness.model import keys
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts
from harness.run.target_cli import LiveKitKeys, livekit_keys

SECRET = "s3cret-" + "x" * 33


def test_keys_come_from_the_env_file_over_the_environment_else_the_demo_pair(tmp_path: Path) -> None:
    assert livekit_keys(None, {}) == LiveKitKeys(keys.LIVEKIT_API_KEY, keys.LIVEKIT_API_SECRET, None)
    environ = {"LIVEKIT_API_KEY": "APIenv", "LIVEKIT_API_SECRET": "env-secret", "OTHER": "x"}
    assert livekit_keys(None, environ) == LiveKitKeys("APIenv", "env-secret", "environment")
    env_file = tmp_path / "production.env"
    env_file.write_text(f"# LiveKit\nLIVEKIT_API_KEY=APIfile\nexport LIVEKIT_API_SECRET='{SECRET}'\n")
    assert livekit_keys(env_file, environ) == LiveKitKeys("APIfile", SECRET, str(env_file))
    env_file.write_text("LIVEKIT_API_KEY=APIfile\n")
    assert livekit_keys(env_file, environ).key == "APIfile" and livekit_keys(env_file, environ).secret == "env-secret"
    with pytest.raises(ConfigError, match=r"LIVEKIT_API_KEY is set .* but LIVEKIT_API_SECRET is not"):
        livekit_keys(env_file, {})
    with pytest.raises(ConfigError, match=r"LIVEKIT_API_SECRET is set .* but LIVEKIT_API_KEY is not"):
        livekit_keys(None, {"LIVEKIT_API_SECRET": "only"})


def _list_rooms(url: str, key: str, secret: str) -> list[str]:
    async def run() -> list[str]:
        async with api.LiveKitAPI(url, api_key=key, api_secret=secret) as lk:
            return [r.name for r in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms]

    return asyncio.run(run())


def test_the_stack_serves_the_configured_pair_and_keeps_the_secret_off_the_command_line(tmp_path: Path) -> None:
    config = StackConfig(
        ports=StackPorts.any(), pieces=("livekit",), data_dir=tmp_path, livekit_api_key="APImine",
        livekit_api_secret=SECRET,
    )  # fmt: skip
    with ReferenceStack(config) as stack:
        url = stack.endpoints.url("livekit")
        assert _list_rooms(url, "APImine", SECRET) == []
        with pytest.raises(api.TwirpError) as refused:
            _list_rooms(url, keys.LIVEKIT_API_KEY, keys.LIVEKIT_API_SECRET)
        assert refused.value.status == 401
        assert stack.endpoints.describe()["LIVEKIT_API_KEY"] == "APImine"
        cmdline = Path(f"/proc/{stack.processes['livekit'].proc.pid}/cmdline").read_bytes()
        assert b"APImine" in cmdline and SECRET.encode() not in cmdline
        # The regions sign `livekit-token` with the same pair (their options, the secret kept apart as well).
        _, _, region = stack._spec("primary", tmp_path)
        assert (region["livekit_api_key"], region["livekit_api_secret"]) == ("APImine", SECRET)
