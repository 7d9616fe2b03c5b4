"""A region server as the source: `--region-url` asks it where its PostgreSQL listens (service key), and its whole
database (Supabase's contract, Realtime's and PostgREST's own objects, the app's migrations) backs up and verifies."""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.model import keys as demo_keys
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts
from tests.backup.conftest import Buckets, Keys


def test_a_region_server_backs_up_and_verifies_by_its_url(
    capsys: pytest.CaptureFixture[str], buckets: Buckets, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    common = ["--gnupg-home", str(keys.a.home), *buckets.store_args(), *buckets.aws_args()]
    with ReferenceStack(StackConfig(ports=StackPorts.any(), pieces=("primary",))) as stack:
        url = stack.endpoints.primary_url
        monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "not-the-key")
        assert main(["backup", "create", "--region-url", url, "--recipient", keys.a.email, *common]) == 2
        assert "refused the service key" in capsys.readouterr().err

        monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", demo_keys.SERVICE_ROLE_KEY)
        code = main(["backup", "create", "--region-url", url, "--label", "ap-southeast-1", "--recipient",
                     keys.a.email, *common])  # fmt: skip
        out = capsys.readouterr().out
        assert code == 0, out
        assert "supabase_admin@127.0.0.1:" in out
        code = main(["backup", "verify", "--label", "ap-southeast-1", "--source-region-url", url, *common])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "public.messages" in out and "verify: ok" in out
