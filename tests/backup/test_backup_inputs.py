"""The edges of `harness backup`: DSNs and their passwords, the roles script, and the refusals that must come before
anything is dumped, uploaded or restored (exit 2 with a message saying what to do)."""

from __future__ import annotations

import pytest

from harness.backup import pgtools
from harness.backup.source import Dsn
from harness.cli import main
from tests.backup.conftest import Buckets, Keys

ROLES = "\n".join(
    [
        "\\restrict abc",
        "CREATE ROLE anon;",
        "ALTER ROLE anon WITH NOSUPERUSER NOINHERIT NOLOGIN;",
        'CREATE ROLE "Odd ""name""";',
        "CREATE ROLE supabase_admin;",
        "ALTER ROLE supabase_admin WITH SUPERUSER;",
        'GRANT anon TO "Odd ""name""" GRANTED BY supabase_admin;',
        "\\unrestrict abc",
    ]
)


def test_a_dsn_password_never_shows_and_reaches_the_programs_as_pgpassword() -> None:
    dsn = Dsn.parse("postgresql://backup:s3cr%40t@db.internal:6543/app")
    assert (dsn.host, dsn.port, dsn.user, dsn.database) == ("db.internal", 6543, "backup", "app")
    assert "s3cr" not in dsn.url() + dsn.display() + repr(dsn)
    assert dsn.env()["PGPASSWORD"] == "s3cr@t"
    assert Dsn.parse("postgresql://127.0.0.1:5432").user == "supabase_admin"


def test_a_bad_dsn_is_a_config_error_without_its_password(capsys: pytest.CaptureFixture[str]) -> None:
    loopback = ["--aws-endpoint-url", "http://127.0.0.1:9"]  # nothing is sent: the DSN fails first
    assert main(["backup", "create", "--dsn", "mysql://u:hunter2@h/db", "--bucket", "b", *loopback]) == 2
    err = capsys.readouterr().err
    assert "not a PostgreSQL URL" in err and "hunter2" not in err


def test_roles_script_skips_create_role_for_roles_the_server_has() -> None:
    assert pgtools.role_names(ROLES) == ["anon", 'Odd "name"', "supabase_admin"]
    kept = pgtools.without_existing_roles(ROLES, {"supabase_admin", 'Odd "name"'})
    assert "CREATE ROLE anon;" in kept and "CREATE ROLE supabase_admin;" not in kept
    assert 'CREATE ROLE "Odd ""name""";' not in kept
    assert "ALTER ROLE supabase_admin WITH SUPERUSER;" in kept and "GRANT anon TO" in kept


def test_an_unknown_recipient_fails_before_any_dump(
    capsys: pytest.CaptureFixture[str], buckets: Buckets, keys: Keys
) -> None:
    code = main(
        ["backup", "create", "--dsn", "postgresql://supabase_admin@127.0.0.1:1/postgres", "--recipient",
         "nobody@harness.test", "--gnupg-home", str(keys.a.home), *buckets.store_args(), *buckets.aws_args()]
    )  # fmt: skip
    assert code == 2
    assert "'nobody@harness.test': no public key" in capsys.readouterr().err
    assert buckets.objects() == []


def test_verify_without_a_backup_and_restore_without_confirmation_refuse(
    capsys: pytest.CaptureFixture[str], buckets: Buckets, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    common = ["--gnupg-home", str(keys.a.home), *buckets.store_args(), *buckets.aws_args()]
    assert main(["backup", "verify", *common]) == 2
    assert "no backup under s3://harness-backups/backups/" in capsys.readouterr().err

    assert main(["backup", "verify", "--key", "elsewhere/x.dump.gpg", *common]) == 2
    assert "is not a backup key" in capsys.readouterr().err

    buckets.s3.put_object(Bucket="harness-backups", Key="backups/sg/20250101T000000Z.dump.gpg", Body=b"x")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    target = "postgresql://supabase_admin@127.0.0.1:1/postgres"
    assert main(["backup", "restore", "--target-dsn", target, *common]) == 2
    assert "needs confirmation: add --yes" in capsys.readouterr().err


def test_every_backup_command_explains_itself(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("create", "verify", "restore", "prune"):
        with pytest.raises(SystemExit) as exit_info:
            main(["backup", command, "--help"])
        assert exit_info.value.code == 0
        assert "--bucket" in capsys.readouterr().out


def test_a_missing_replica_bucket_fails_before_any_dump(
    capsys: pytest.CaptureFixture[str], buckets: Buckets, keys: Keys
) -> None:
    code = main(
        ["backup", "create", "--dsn", "postgresql://supabase_admin@127.0.0.1:1/postgres", "--recipient",
         keys.a.email, "--gnupg-home", str(keys.a.home), *buckets.aws_args(), "--bucket", "harness-backups",
         "--replica-bucket", "no-such-bucket"]
    )  # fmt: skip
    assert code == 2
    assert "bucket no-such-bucket does not exist" in capsys.readouterr().err
    assert buckets.objects() == []
